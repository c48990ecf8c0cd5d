"""Deterministic test text for the tokenizer exactness tests.

generate(seed, target_bytes) returns a list of records (strings, some with
embedded newlines) that together cover what byte-level BPE pre-tokenizers
treat specially: contractions, digit runs, whitespace runs of every kind,
punctuation runs, many scripts, combining marks, emoji (ZWJ, flags, skin
tones), and special tokens mixed into text. Everything is produced from a
seeded PRNG, so every run and every machine sees the same text.
"""
import random

WORDS = ("the of and to in is was for on that with as by at from it an be this are or his which "
         "but not have had were they one their all her she there been has when who will more no if "
         "out so said what up its about into than them can only other new some could time these two "
         "may then do first any my now such like our over man me even most made after also did many "
         "before must through back years where much your way well down should because each just those "
         "people how too little state good very make world still own see men work long get here between "
         "both life being under never day same another know while last might us great old year off come "
         "since against go came right used take three tokenizer merges vocabulary gradient optimizer "
         "preference reward policy reference chosen rejected margin").split()
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'D",
                "'ſ", "'x", "'", "''", "n't", "N'T"]
PUNCT = list("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~") + ["...", "--", "—", "–", "«", "»", "“", "”", "‘", "’",
                                                      "¿", "¡", "•", "©", "®", "™", "°", "€", "£", "¥", "§"]
LATIN = ("café naïve résumé façade jalapeño Ångström Ærøskøbing Łódź Škoda straße Müller crème brûlée "
         "déjà vu coöperate São Paulo İstanbul ĳssel Œuvre").split()
SCRIPTS = [
    "日本語のテキストです。東京は大きい都市です。", "中文文本，包括标点符号。我们在测试分词器！",
    "한국어 문장입니다. 토크나이저 테스트.", "Русский текст с пунктуацией, и ещё немного слов.",
    "Ελληνικά γράμματα και λέξεις.", "العربية نص مع علامات، وأرقام ١٢٣٤٥٦٧٨٩٠.",
    "עברית עם ניקוד: שָׁלוֹם.", "हिन्दी पाठ में मात्राएँ और अंक १२३।", "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Tiếng Việt có nhiều dấu thanh điệu.", "ქართული ენა", "Հայերեն լեզու", "ᚠᚢᚦᚨᚱᚲ runes",
    "Deutsch: Größe, Übel, Äpfel.", "Polski: zażółć gęślą jaźń.", "Türkçe: ığüşöç İI",
    "emoji 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇯🇵 ❤️ ✌🏿 🧑🏻‍💻 #️⃣ 1️⃣",
    "math ∑∫∂√∞≈≠≤≥ ∀x∈ℝ: x²≥0, ½ ¾ ⅓ ⅔ ① ② Ⅻ ⁴²", "fullwidth ＡＢＣ１２３！？", "box ┌─┐│└┘ ░▒▓█",
    "combining e\u0301 a\u0300 o\u0308 n\u0303 c\u0327 z\u030c\u0323 q\u0307\u0301",
    "zero width: a\u200bb\u200cc\u200dd\ufeffe\u2060f", "nbsp:\u00a0x\u2009y\u202fz\u3000w\u1680v\u180eu\u2028t\u2029s\u0085r",
]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<file_sep>", "<|endoftext|",
            "<|im_start", "|endoftext|>", "<|begin_of_text|>", "<|eot_id|>"]
WS = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", " \n", "\n ", " \t ", "\u00a0", "\u3000",
      "\x0b", "\x0c", "\x85", "\u2003", "    \n\n    ", "\n\t\t", " " * 17, "\n" * 5]
CODE = [
    "def f(x, y=3):\n    return x ** 2 + y  # square\n", "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}\n",
    "if (x != NULL && *x == '\\0') return -1;", "const char *s = \"hello, world\\n\";",
    "    else:\n        pass\n\n\n", "x = {'a': 1, \"b\": [1, 2, 3]}  ", "#include <stdio.h>\n#define MAX(a,b) ((a)>(b)?(a):(b))",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;", "$ ls -la | grep '^d' > out.txt 2>&1",
    "<div class=\"x\">&nbsp;&lt;tag&gt;</div>", "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
    "a+=1;b-=2;c*=3;d/=4;e%=5;f<<=6;g>>=7;", "// TODO: fix this!!!\n/* block\n * comment */",
    "\"\"\"docstring with 'quotes' and \\\"escapes\\\".\"\"\"", "lambda: [i for i in range(10) if i % 2]",
]


def word(r):
    w = r.choice(WORDS) if r.random() < 0.85 else r.choice(LATIN)
    x = r.random()
    if x < 0.1:
        w = w.capitalize()
    elif x < 0.13:
        w = w.upper()
    return w


def number(r):
    k = r.random()
    if k < 0.3:
        return str(r.randrange(10 ** r.randint(1, 4)))
    if k < 0.5:
        return "".join(r.choice("0123456789") for _ in range(r.randint(5, 60)))
    if k < 0.6:
        return f"{r.random() * 10 ** r.randint(0, 8):.{r.randint(1, 6)}f}"
    if k < 0.7:
        return f"{r.randint(1, 28)}/{r.randint(1, 12)}/{r.randint(1900, 2100)}"
    if k < 0.8:
        return "".join(r.choice("٠١٢٣٤٥٦٧٨٩०१२३४५６７８９²³½¼ⅫⅣ①") for _ in range(r.randint(1, 8)))
    if k < 0.9:
        return "v" + ".".join(str(r.randrange(100)) for _ in range(3)) + r.choice(["", "rc1", "-beta"])
    return "0x" + "".join(r.choice("0123456789abcdefABCDEF") for _ in range(r.randint(1, 16)))


def prose(r):
    out = []
    for _ in range(r.randint(3, 30)):
        x = r.random()
        if x < 0.6:
            out.append(word(r))
        elif x < 0.7:
            out[-1:] = [(out[-1] if out else word(r)) + r.choice(CONTRACTIONS)]
        elif x < 0.8:
            out.append(number(r))
        elif x < 0.9:
            out.append(r.choice(PUNCT) * r.choice([1, 1, 1, 2, 3]))
        else:
            out.append(r.choice(SCRIPTS).split(" ")[0])
    sep = lambda: r.choice([" "] * 12 + WS)
    s = ""
    for w in out:
        s += w + (sep() if r.random() < 0.9 else "")
    return s


def mixed(r):
    """A record assembled from random fragments of every kind."""
    parts = []
    for _ in range(r.randint(1, 8)):
        k = r.random()
        if k < 0.3:
            parts.append(prose(r))
        elif k < 0.45:
            parts.append(r.choice(CODE))
        elif k < 0.6:
            s = r.choice(SCRIPTS)
            a = r.randrange(len(s))
            parts.append(s[a:a + r.randint(1, 40)])
        elif k < 0.7:
            parts.append(r.choice(SPECIALS))
        elif k < 0.8:
            parts.append("".join(r.choice(WS) for _ in range(r.randint(1, 5))))
        elif k < 0.9:
            parts.append(number(r))
        else:
            parts.append("".join(r.choice(PUNCT) for _ in range(r.randint(1, 12))))
    return "".join(parts)


def chat(r):
    turns = []
    for role in r.sample(["system", "user", "assistant"], 3):
        turns.append(f"<|im_start|>{role}\n{prose(r)}<|im_end|>")
    return "\n".join(turns) + r.choice(["", "\n", "<|endoftext|>", " <|endoftext|> "])


def long_runs(r):
    """Runs long enough to take the heap path of the BPE merge loop."""
    c = r.choice([" ", "\t", "\n", "=", "-", "*", "#", "ab", "a", "9", "😀", "é", "\u3000", " \n"])
    return word(r) + c * r.randint(40, 700) + r.choice(["", "x", " y", "\n"])


def generate(seed=20240611, target_bytes=1_100_000, long_runs_too=True):
    """Records totalling target_bytes. long_runs_too=False leaves out the
    40-700 character runs, which test the merge loop but are rare in real text."""
    r = random.Random(seed)
    recs = []
    recs += [s for s in SCRIPTS] + CODE + SPECIALS + WS
    recs += [c + w for c in CONTRACTIONS for w in ["", " x", "s", "ll"]]
    recs += ["", " ", "  ", "a", " a", "a ", "\n", "x\n", " \n ", "<|endoftext|><|endoftext|>", "<<|endoftext|>>",
             "<|im_start|><|im_end|>", " <|im_start|> ", "1 2  3   4", " 12345678901234567890 ", "a1b22c333d4444"]
    size = sum(len(s.encode()) for s in recs)
    makers = [prose] * 4 + [mixed] * 4 + [chat] + ([long_runs] if long_runs_too else [])
    while size < target_bytes:
        s = r.choice(makers)(r)
        recs.append(s)
        size += len(s.encode())
    return recs


def unicode_sweep(step_lines=48):
    """Every scalar value in a few contexts that reveal how the pre-tokenizer
    classifies it (letter, number, whitespace or other)."""
    recs, cur = [], []
    for cp in range(0x0, 0x110000):
        # surrogates are not text; planes 4-13 are unassigned in every Unicode version
        if 0xD800 <= cp <= 0xDFFF or 0x40000 <= cp < 0xE0000:
            continue
        c = chr(cp)
        cur.append(f"a{c} {c}{c}1{c}\t")
        if len(cur) == step_lines:
            recs.append("".join(cur))
            cur = []
    if cur:
        recs.append("".join(cur))
    return recs


if __name__ == "__main__":
    import sys
    recs = generate()
    print(len(recs), sum(len(s.encode()) for s in recs), file=sys.stderr)
