#!/usr/bin/env python3
"""Writes tests/data/tokenizer/corpus.jsonl: the strings the tokenizer goldens are made from.

Deterministic (hand-written cases plus combinations drawn with a fixed seed). One JSON object
per line: {"text": "..."}. Run from anywhere: python3 scripts/goldens/make_tokenizer_corpus.py
"""
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "data", "tokenizer", "corpus.jsonl")

cases = []


def add(*texts):
    cases.extend(texts)


# --- empty, whitespace only, leading/trailing spaces
add("", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", " \n ", "\t\t\n", " a", "a ", "  a  ", " hello world ",
    "hello  world", "hello   world", "hello    world    ", "   leading three", "trailing three   ",
    "x\u00a0y", "\u3000full width space", "a\u2009thin\u200bzero width", "\u200b", "\ufeffBOM first")

# --- plain English, punctuation, casing
add("Hello, world!", "Hello world", "hello world", "HELLO WORLD", "The quick brown fox jumps over the lazy dog.",
    "It's a test. Isn't it? Yes -- it is; really: (maybe) [sure] {ok} <fine>",
    "She said \"hi\" and left...", "Mr. O'Neil's dog's bone", "e.g. i.e. etc. vs. U.S.A.",
    "What?!?! No way!!!", "email: john.doe+tag@example.com, url: https://example.org/a/b?c=d&e=f#g",
    "#hashtag @mention $100 50% 3*4=12 a^b ~tilde `backtick` |pipe| \\backslash/",
    "CamelCaseIdentifier snake_case_name kebab-case-name SCREAMING_SNAKE",
    "supercalifragilisticexpialidocious", "antidisestablishmentarianism",
    "pneumonoultramicroscopicsilicovolcanoconiosis")

# --- contractions, lower and upper case, curly apostrophes
add("I'm you're we've they'll he'd it's can't won't", "I'M YOU'RE WE'VE THEY'LL HE'D IT'S CAN'T",
    "'s 't 're 've 'm 'll 'd", "'S 'T 'RE 'VE 'M 'LL 'D", "'s't're've'm'll'd", "x'sy'Ty'REz",
    "don\u2019t it\u2019s we\u2019re", "rock 'n' roll", "''quoted''", "O'Reilly's", "'tis 'twas",
    "ol' 'll' '", "it'S wE'Ll", "it'\u017f \u017fs 'K '\u212a", "'\u0130 '\u0131", "x\u0085 y\u0085\u0085z \u0085")

# --- numbers
add("0", "1", "12", "123", "1234", "12345", "123456", "1234567", "12345678901234567890",
    "3.14159265358979323846264338327950288419716939937510", "1,000,000", "1 000 000", "-42", "+7", "1e-10",
    "0x1F3A", "2024-01-15T10:30:00Z", "v1.2.3", "ipv4 192.168.0.1", "phone +1 (555) 123-4567",
    "٠١٢٣٤٥٦٧٨٩ Arabic-Indic", "१२३४ Devanagari digits", "①②③ circled", "Ⅻ roman numeral", "½ ¾ ⅞",
    "x²+y³=z⁴", "１２３ full width digits", "𝟙𝟚𝟛 math digits", "a1b22c333d4444e55555")

# --- multilingual
add("你好，世界！", "我爱自然语言处理。今天天气很好。", "中文English混合mixed文本", "日本語のテキストです。カタカナ、ひらがな。",
    "東京は日本の首都です", "한국어 텍스트입니다. 안녕하세요!", "안녕하세요세계",
    "Привет, мир! Как дела?", "Съешь же ещё этих мягких французских булок", "ПРИВЕТ МИР",
    "مرحبا بالعالم", "السلام عليكم ورحمة الله", "שלום עולם", "नमस्ते दुनिया", "हिन्दी में लिखा गया पाठ",
    "สวัสดีครับ ยินดีต้อนรับ", "ภาษาไทยไม่มีช่องว่างระหว่างคำ", "Γειά σου Κόσμε", "Ελληνικά κείμενα",
    "Tiếng Việt có dấu: Xin chào thế giới", "Türkçe: İstanbul ığdır şçöğü", "Straße Größe Äpfel ÖL Übermut ß ẞ",
    "Ελλάδα ΕΛΛΆΔΑ", "ქართული ენა", "Հայերեն", "አማርኛ", "தமிழ் மொழி", "বাংলা ভাষা", "ગુજરાતી", "ਪੰਜਾਬੀ",
    "ಕನ್ನಡ", "മലയാളം", "සිංහල", "ລາວ", "ខ្មែរ", "မြန်မာ", "བོད་ཡིག", "ᠮᠣᠩᠭᠣᠯ", "ᚠᚢᚦᚨᚱᚲ", "ꦗꦮ",
    "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ", "ｶﾀｶﾅ half width katakana", "𝐁𝐨𝐥𝐝 𝑰𝒕𝒂𝒍𝒊𝒄 math letters", "ﬁ ﬂ ligatures ﬀ",
    "Å Ω µ K (compat chars)", "㈱ ㍻ ㎏ ㎞ squared", "Ǆ ǅ ǆ digraphs", "İ ı I i dotted")

# --- emoji
add("😀", "😀😃😄😁", "I love 🍕 and 🍣!", "👍🏻👍🏼👍🏽👍🏾👍🏿", "👋🏽 hi", "👨‍👩‍👧‍👦 family",
    "👩🏽‍💻 coder", "🏳️‍🌈 flag", "🏴‍☠️ pirate", "🇺🇸🇬🇧🇯🇵🇩🇪🇫🇷", "🇺🇸 USA 🇨🇦", "❤️ ❤ ♥️",
    "1️⃣ 2️⃣ #️⃣ *️⃣", "🧑‍🤝‍🧑", "🫠🫡🫶 new emoji", "🏴󠁧󠁢󠁳󠁣󠁴󠁿 Scotland tag sequence", "☺️☹️",
    "emoji😀glued😀to😀words", "🐍 Python 🦀 Rust ☕ Java")

# --- combining marks and normalization forms
add("e\u0301", "cafe\u0301", "caf\u00e9", "Cafe\u0301 vs Caf\u00e9", "n\u0303o", "A\u030a", "\u212b", "\u2126",
    "a\u0308o\u0308u\u0308", "\u1e9b\u0323", "q\u0307\u0323", "\u0915\u093c", "\u1100\u1161\u11a8",
    "\uac00", "e\u0301\u0301\u0301", "\u0301 leading combining", "x\u20dd", "Zalgo: Z\u0351\u036b\u0343a\u0311l\u0310g\u0344o",
    "\u00c5ngstr\u00f6m \u212bngstro\u0308m", "\ufb01nance \ufb03", "\u2460\u2461", "\u00bd", "\u33a1",
    "\u1e0a\u0323 \u1e0c\u0307", "\u0041\u030a\u0301")

# --- code
add("def foo(x):\n    return x * 2\n",
    "int main() {\n\tprintf(\"hello\\n\");\n\treturn 0;\n}\n",
    "for (int i = 0; i < n; ++i) {\n        sum += a[i];\n    }",
    "    indented four\n        indented eight\n\t\ttabbed two\n",
    "if x:\n\tif y:\n\t\tpass\n\telse:\n\t\treturn None",
    "const f = async () => { await fetch('/api'); };",
    "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
    "<html>\n  <body class=\"main\">\n    <p>Hi &amp; bye</p>\n  </body>\n</html>",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "#include <vector>\ntemplate <typename T> std::vector<T> v;\n",
    "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
    "x = [i**2 for i in range(10) if i % 2 == 0]  # squares",
    "$ ls -la | grep '\\.cpp$' && echo done",
    "    \n    \n\n    x",
    "a\n\n\n\nb", "line1\r\nline2\r\nline3\r\n", "a\r\rb\r", "mixed\n\r\n\r endings",
    "trailing spaces   \nnext", "\n\n   \n\t\n", "  \t  \t", "tab\tseparated\tvalues\t1\t2",
    "// comment\n/* block\n * comment */\n", "x=1;y=2;z=x+y;", "a  =  b   +   c",
    "```python\nprint('hi')\n```", "- [ ] todo\n- [x] done\n* bullet\n1. numbered",
    "| a | b |\n|---|---|\n| 1 | 2 |", "    ", "\n    ", "   \n", "a \nb", "a  \n  b")

# --- control characters and odd code points
add("\x00", "a\x00b", "\x01\x02\x03", "bell\x07 backspace\x08", "\x1b[31mred\x1b[0m", "\x7f delete",
    "\x0b vertical tab \x0c form feed", "\x85 next line", "\u2028 line sep \u2029 para sep",
    "\ufffd replacement", "\ufffe\uffff nonchars", "\U0010ffff max", "\ue000 private use",
    "\u200d zwj alone", "\u200e\u200f lrm rlm", "\u202e reversed \u202c", "a\u0000\u0000\u0000b",
    "\u00ad soft hyphen", "\u2060 word joiner")

# --- special tokens inside text and broken pieces of them
add("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
    "hello<|endoftext|>world", "<|endoftext|><|endoftext|>", " <|endoftext|> ", "word<|im_end|>word",
    "<|im_start", "im_start|>", "<|im_", "<|endoftext", "|endoftext|>", "<|endoftext|", "<<|endoftext|>>",
    "<|im_start|><|im_end|>", "<|IM_START|>", "< |im_start| >", "<think>reasoning</think>answer",
    "<think>\n\n</think>\n\n", "<tool_call>{\"name\": \"f\"}</tool_call>", "<tool_call", "</tool_call>x",
    "<|begin_of_text|>", "<|begin_of_text|>Hello", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<|eot_id|><|eot_id|>", "<|end_of_text|>", "<|begin_of_text", "<|reserved_special_token_5|>",
    "<|reserved_special_token_250|>x", "<|reserved_special_token_999|>",
    "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cbegin\u2581of\u2581sentence\uff5c>Hello",
    "<\uff5cUser\uff5c>hi<\uff5cAssistant\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>",
    "<\uff5ctool\u2581calls\u2581begin\uff5c><\uff5ctool\u2581call\u2581begin\uff5c>function<\uff5ctool\u2581sep\uff5c>f",
    "<\uff5cbegin\u2581of", "\u2581of\u2581sentence\uff5c>", "text <|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
    "<|vision_start|><|image_pad|><|vision_end|>", "<s>", "</s>", "<unk>", "<pad>", "[CLS] [SEP] [MASK]",
    "<|endoftext|>Hello<|im_start|>", "a<|im_start|>b<|im_end|>c<|endoftext|>d")

# --- very long words and runs
add("a" * 300, "ab" * 200, "abc" * 150, "x" * 1000, "Ġ" * 50, "9" * 120, "!" * 80, " " * 64, "\n" * 40,
    "-" * 100, "=" * 77, "😀" * 40, "中" * 120, "a" + " " * 50 + "b", "\t" * 30 + "x",
    "hippopotomonstrosesquippedaliophobia" * 6, "_" * 33 + "init" + "_" * 33,
    "Lopadotemachoselachogaleokranioleipsanodrimhypotrimmatosilphioparaomelitokatakechymenokichlepikossyphophattoperisteralektryonoptekephalliokigklopeleiolagoiosiraiobaphetraganopterygon")

# --- words that byte-level BPE treats specially
add("Ġ Ċ ĉ Ā ā", "\u0120the \u010a", "▁hello ▁world", "<0x41>", "<0x0A>", "##ing", "</w>", "Ġhello")

# --- longer natural paragraphs
add("Natural language processing (NLP) is an interdisciplinary subfield of computer science and linguistics. "
    "It is primarily concerned with giving computers the ability to support and manipulate human language.",
    "In 1950, Alan Turing published an article titled \"Computing Machinery and Intelligence\" which proposed "
    "what is now called the Turing test as a criterion of intelligence.\n\nThe premise of symbolic NLP is well-summarized "
    "by John Searle's Chinese room experiment.",
    "Large language models (LLMs) are trained on trillions of tokens; GPT-4, Llama-3 and Qwen2.5 are examples. "
    "Their tokenizers use byte-level BPE with ~100k-150k entries.",
    "机器学习是人工智能的一个分支。它使计算机能够在没有明确编程的情况下学习。深度学习是机器学习的一个子集，使用多层神经网络。",
    "Машинное обучение — класс методов искусственного интеллекта, характерной чертой которых является не прямое решение задачи.",
    "التعلم الآلي هو فرع من فروع الذكاء الاصطناعي يهتم بتصميم وتطوير خوارزميات تسمح للحواسيب بتطوير سلوكيات.",
    "मशीन लर्निंग कृत्रिम बुद्धिमत्ता की एक शाखा है। यह कंप्यूटर को स्पष्ट रूप से प्रोग्राम किए बिना सीखने में सक्षम बनाता है।",
    "機械学習は人工知能の一分野であり、コンピュータがデータから学習する能力を研究する。",
    "기계 학습은 인공 지능의 한 분야로, 컴퓨터가 학습할 수 있도록 하는 알고리즘과 기술을 개발하는 분야이다.",
    "การเรียนรู้ของเครื่องเป็นสาขาหนึ่งของปัญญาประดิษฐ์ที่เกี่ยวข้องกับการพัฒนาอัลกอริทึม")

# --- deterministic combinations of fragments
rng = random.Random(20240607)
fragments = [
    "the", " the", "The", "THE", "cat", " dog", "'s", "'LL", "n't", " ", "  ", "\n", "\r\n", "\t", "    ",
    "123", "4567", "3.5", "!", "?!", "...", ",", ";", "(", ")", "\"", "'", "-", "—", "–", "…", "«", "»", "“", "”",
    "你好", "世界", "日本", "カタカナ", "한국", "Привет", "мир", "مرحبا", "नमस्ते", "สวัสดี", "Ελλάδα",
    "😀", "👍🏽", "👨‍👩‍👧", "🇯🇵", "e\u0301", "\u00e9", "n\u0303", "ﬁ", "①", "²", "\x00", "\x1b", "\u200b", "\u00a0",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_", "|>", "<|", "<think>", "</think>",
    "<|begin_of_text|>", "<|eot_id|>", "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cUser\uff5c>", "<s>", "</s>",
    "def", "return", "{", "}", "[", "]", "::", "->", "=>", "==", "!=", "<=", "_", "__", "#", "//", "/*",
    "hello", "World", "supercalifragilistic", "Ġ", "▁", "aaaaaaa", "zzz", "x", "Q",
]
for _ in range(200):
    n = rng.randint(2, 12)
    cases.append("".join(rng.choice(fragments) for _ in range(n)))

seen = set()
unique = []
for c in cases:
    if c not in seen:
        seen.add(c)
        unique.append(c)

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w", encoding="utf-8", newline="\n") as f:
    for c in unique:
        f.write(json.dumps({"text": c}, ensure_ascii=True) + "\n")
print(f"wrote {len(unique)} strings to {os.path.normpath(OUT)}")
