// ServingTokenizer over the tiny model's real tokenizer: the raw bytes of single tokens
// (logprobs "bytes") concatenate back to the encoded text, also where a token ends inside
// a multi-byte character; chat rendering honours continue_final_message.
#include <gtest/gtest.h>

#include "server/errors.h"
#include "server/tokenization.h"
#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tllm {
namespace {

TEST(ServingTokenizer, TokenBytesConcatenateToTheText) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const auto tok = Tokenizer::load(dir);
  ServingTokenizer st(*tok, nullptr, 4096);
  const std::vector<std::string> texts = {
      "And the LORD said unto Moses,", "caf\xc3\xa9 na\xc3\xafve \xe2\x82\xac 100",  // é ï €
      "\xe4\xb8\xad\xe6\x96\x87\xe5\xad\x97",                                         // 中文字
      "emoji \xf0\x9f\x98\x80\xf0\x9f\x8e\x89 end", "<|im_start|>user\nhi<|im_end|>"};
  bool saw_partial = false;
  for (const auto& text : texts) {
    SCOPED_TRACE(text);
    std::string joined;
    for (int32_t id : tok->encode(text, false)) {
      const std::string& b = st.table().bytes(id);
      saw_partial |= tok->decode(std::vector<int32_t>{id}, false).find("\xef\xbf\xbd") != std::string::npos;
      joined += b;
    }
    EXPECT_EQ(joined, text);
  }
  EXPECT_TRUE(saw_partial) << "no token ended inside a character; the byte-level path went untested";
  EXPECT_EQ(st.table().bytes(-1), "");
  EXPECT_EQ(st.table().bytes(5000), "");
}

TEST(ServingTokenizer, ChatRendering) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const auto tok = Tokenizer::load(dir);
  const auto chat = ChatTemplate::load(dir);
  ServingTokenizer st(*tok, chat.get(), 4096);
  ChatRequest r;
  r.messages = RequestJson::parse(R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello th"}])");
  r.add_generation_prompt = false;
  const std::string full = chat->render(r.messages, nullptr, false);
  EXPECT_EQ(st.render_chat(r), full);
  r.continue_final_message = true;
  EXPECT_EQ(st.render_chat(r), full.substr(0, full.rfind("Hello th") + 8));

  // As transformers: the text is found stripped, so a template that trims it (Llama 3's does)
  // still continues it; trailing whitespace stays only where the template kept the text whole;
  // a list content continues its last text part.
  const auto trims = ChatTemplate::from_string(
      "{% for m in messages %}<{{ m.role }}>{{ m.content|trim if m.content is string else m.content[-1].text }}"
      "</{{ m.role }}>{% endfor %}");
  ServingTokenizer trimming(*tok, trims.get(), 4096);
  r.messages = RequestJson::parse(R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": " Hello "}])");
  EXPECT_EQ(trimming.render_chat(r), "<user>Hi</user><assistant>Hello");
  r.messages = RequestJson::parse(R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])");
  EXPECT_EQ(trimming.render_chat(r), "<user>Hi</user><assistant>Hello");
  // Python strips Unicode whitespace too (a no-break space here), as the template's |trim does.
  r.messages = RequestJson::parse(
      R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello\u00a0"}])");
  EXPECT_EQ(trimming.render_chat(r), "<user>Hi</user><assistant>Hello");
  r.messages = RequestJson::parse(
      R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": [{"type": "text", "text": "Well, "}]}])");
  EXPECT_EQ(trimming.render_chat(r), "<user>Hi</user><assistant>Well, ");
  r.messages = RequestJson::parse(R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Bye"}])");
  const auto other = ChatTemplate::from_string("{% for m in messages %}[{{ m.role }}]{% endfor %}");
  try {
    ServingTokenizer(*tok, other.get(), 4096).render_chat(r);
    FAIL() << "a final message the template leaves out was continued";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.param, "continue_final_message");
  }

  ServingTokenizer no_template(*tok, nullptr, 4096);
  try {
    no_template.render_chat(r);
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
  }
}

}  // namespace
}  // namespace tllm
