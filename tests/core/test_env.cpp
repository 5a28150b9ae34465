// core/env.h: the environment's switches and numbers, and the errors that name a misspelt one.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "core/env.h"

namespace tllm {
namespace {

// Sets `name` for one test (unset: nullptr) and restores what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      had_ = true;
      old_ = old;
    }
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_, old_.c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

constexpr const char* kVar = "TLLM_TEST_ENV_VALUE";

std::string error_of(auto&& f) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

// Unset or empty gives the default (on for env_switch_on, off for env_flag), "1" on, "0" off.
TEST(Env, SwitchesTakeTheirDefaultWhenUnset) {
  for (const char* v : {static_cast<const char*>(nullptr), "", "1", "0"}) {
    ScopedEnv e(kVar, v);
    const bool set = v && *v;
    EXPECT_EQ(env_switch_on(kVar), set ? v[0] == '1' : true) << (v ? v : "unset");
    EXPECT_EQ(env_flag(kVar), set ? v[0] == '1' : false) << (v ? v : "unset");
  }
}

TEST(Env, MisspeltSwitchesNameTheVariable) {
  for (const char* v : {"off", "no", "true", "2", " 1", "0 "}) {
    ScopedEnv e(kVar, v);
    const std::string on = error_of([] { env_switch_on(kVar); });
    const std::string flag = error_of([] { env_flag(kVar); });
    for (const std::string& m : {on, flag}) {
      EXPECT_NE(m.find(kVar), std::string::npos) << v << ": " << m;
      EXPECT_NE(m.find(std::string("'") + v + "'"), std::string::npos) << v << ": " << m;
    }
  }
}

TEST(Env, Integers) {
  {
    ScopedEnv e(kVar, nullptr);
    EXPECT_EQ(env_int(kVar, -7), -7);
  }
  {
    ScopedEnv e(kVar, "");
    EXPECT_EQ(env_int(kVar, 3), 3);
  }
  for (auto [text, want] : {std::pair{"0", 0}, {"128", 128}, {"-1", -1}, {"+5", 5}, {"2147483647", 2147483647}}) {
    ScopedEnv e(kVar, text);
    EXPECT_EQ(env_int(kVar, 99), want) << text;
  }
  for (const char* v : {"abc", "12x", "1.5", "0x10", " ", "2147483648", "-99999999999"}) {
    ScopedEnv e(kVar, v);
    const std::string m = error_of([] { env_int(kVar, 0); });
    EXPECT_NE(m.find(kVar), std::string::npos) << v << ": " << m;
    EXPECT_NE(m.find("integer"), std::string::npos) << v << ": " << m;
  }
}

}  // namespace
}  // namespace tllm
