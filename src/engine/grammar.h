// Context-free grammars for structured output (vLLM's guided_grammar and
// structured_outputs.grammar), in the GBNF form that llama.cpp and xgrammar read:
//
//   root   ::= expr                      # the output is one `root`
//   expr   ::= term (("+" | "-") term)*
//   term   ::= [0-9]+ | "(" expr ")"
//
// Rules `name ::= alternatives`, a rule's body running until the next `name ::=`; sequences of
// "strings" (escapes \n \r \t \\ \" \xHH \uHHHH \UHHHHHHHH), [classes] ([^...] negated, ranges,
// the same escapes), `.` (any character), rule names and ( groups ); `|` between
// alternatives; the quantifiers * + ? {m} {m,} {m,n}; # comments. Refused with the line and
// column: undefined rules, no `root`, a rule that can never end, left recursion (write
// `list ::= item ("," item)*`, not `list ::= list "," item | item`).
//
// Grammar::State follows an output byte by byte, as the set of parse stacks of a pushdown
// recognizer (llama.cpp's approach): every rule can end, so a prefix it takes always has a
// completion. Characters are Unicode code points matched as their UTF-8 bytes; a partial
// character is taken while some character of a class can still begin with it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/small_vector.h"
#include "engine/code_point_ranges.h"

namespace tllm {

class Grammar {
 public:
  static constexpr size_t kMaxElements = 200000;  // compiled size, after which a grammar is refused
  static constexpr int kMaxRepeat = 1000;         // the largest bound of {m,n}
  // Parse stacks kept per position, and their elements in all (the rest dropped, the first
  // stack always kept). The token filter copies and feeds a state once per node of the
  // vocabulary's trie, so a step costs about that many stacks times the trie: an ambiguous
  // grammar (p ::= [a-z] p [0-9] | [a-z] p "." | "" keeps 2^n stacks after n letters) must not
  // make each token's mask cost minutes on the engine's one thread. Dropping stacks keeps the
  // output a sentence (each stack left has a completion); it only narrows what may come.
  static constexpr size_t kMaxStacks = 32;
  static constexpr size_t kMaxStackData = 1024;
  static constexpr size_t kMaxRules = 20000;      // rules, groups and repetitions included
  static constexpr int kMaxNesting = 200;         // groups inside groups

  // Throws InvalidArgument "grammar: line L, column C: what is wrong".
  static std::shared_ptr<const Grammar> compile(std::string_view text);
  const std::string& source() const { return source_; }

  class State {
   public:
    // Takes byte c: false (the state unchanged) when no sentence begins with the bytes so far
    // and c.
    bool feed(unsigned char c);
    // The bytes so far are a whole sentence.
    bool complete() const;
    // Complete, and nothing may follow.
    bool finished() const;
    // Equal keys: equal states (of one grammar).
    std::string key() const;
    // The characters that leave this state as it is (a string's plain characters, say):
    // false when there are none, or too many classes on top to tell.
    bool loops(CodePointRanges& out) const;

   private:
    friend class Grammar;
    const Grammar* g_ = nullptr;
    // The parse stacks, each as its length, then its element positions from the bottom (the
    // top: the next to match, a character class); in lexicographic order, distinct. An empty
    // stack (the sentence may end here) comes first. Inline: the state is copied per node of
    // the vocabulary's trie.
    SmallVector<int32_t, 40> stacks_;
    uint32_t partial_ = 0;  // the code point's bits of a partial UTF-8 character
    int have_ = 0, need_ = 0;  // its bytes read and its length (0: none pending)
  };
  State start() const;

  // Whether all of `text` is a sentence.
  bool full_match(std::string_view text) const;

 private:
  struct Element {
    enum Kind : uint8_t { End, Ref, Chars } kind = End;
    int32_t arg = 0;  // Ref: the rule; Chars: the class
  };
  friend class GrammarCompiler;

  struct Expansion;  // grammar.cpp: the stacks one step yields, before sorting
  // Adds to `out` every stack that out.cur (element positions) expands to: rule references
  // replaced by their alternatives, finished alternatives popped, until a character class is
  // on top (or the stack is empty: the sentence may end).
  void expand(Expansion& out) const;
  void settle(Expansion& out, State& st) const;  // out's stacks, sorted and distinct, into st
  static Expansion& expansion_scratch();        // this thread's, cleared
  bool class_has(int cls, uint32_t cp) const;
  bool class_meets(int cls, uint32_t lo, uint32_t hi) const;  // a code point of [lo, hi] in it

  std::string source_;
  std::vector<Element> elements_;              // alternatives, each ending with End
  std::vector<std::vector<int32_t>> rules_;    // per rule: where its alternatives start
  std::vector<CodePointRanges> classes_;
  int root_ = 0;
};

// JSON (any value of RFC 8259's grammar, with optional whitespace after tokens) as a GBNF
// grammar, as llama.cpp's grammars/json.gbnf describes the language. The token filter's tests
// and benchmark compare it with JSON mode.
inline constexpr const char* kJsonGbnf = R"g(
      root   ::= object
      value  ::= object | array | string | number | ("true" | "false" | "null") ws
      object ::= "{" ws (string ":" ws value ("," ws string ":" ws value)*)? "}" ws
      array  ::= "[" ws (value ("," ws value)*)? "]" ws
      string ::= "\"" ([^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}))* "\"" ws
      number ::= "-"? ("0" | [1-9] [0-9]*) ("." [0-9]+)? ([eE] [-+]? [0-9]+)? ws
      ws     ::= ([ \t\n] ws)?
  )g";

}  // namespace tllm
