// Hugging Face hub repositories as model folders: `--model Qwen/Qwen2.5-0.5B-Instruct` as vLLM
// takes it. A name that is not a local path but reads as a repository id resolves to its
// snapshot in the hub cache that huggingface_hub (and `huggingface-cli download`) keeps, in the
// same layout, so checkpoints either tool fetched serve both:
//
//   <cache>/models--Qwen--Qwen2.5-0.5B-Instruct/
//     refs/main                      the commit the branch or tag pointed at when last fetched
//     blobs/<etag>                   file contents: LFS files by their sha256, others by git blob id
//     snapshots/<commit>/<file>      relative symbolic links into blobs/
//
// Files missing from the snapshot are downloaded (only those a command reads: config and
// tokenizer JSON, chat templates, *.safetensors; not .bin / .gguf / ONNX or subfolders) from
// $HF_ENDPOINT (https://huggingface.co), each checked against the size and hash the hub lists
// (sha256 for LFS files, the git blob id for others), resumed where an interrupted download
// left a part. Where the hub cannot be asked (no network, an error), a cached snapshot of the
// revision is used with a warning; HF_HUB_OFFLINE=1 never asks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tllm {

// Which of a repository's files a command reads.
enum class HubFiles {
  Model,      // weights, config, tokenizer, templates
  NoWeights,  // the same without *.safetensors (--load-format dummy)
  Tokenizer,  // tokenizer.json, tokenizer_config.json and templates only (tokenize, render-chat)
};

struct HubOptions {
  std::string revision = "main";  // branch, tag or 40-hex commit (vLLM's --revision)
  std::string cache_dir;          // "": $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub (vLLM's --download-dir)
  std::string endpoint;           // "": $HF_ENDPOINT, else https://huggingface.co
  std::string token;              // "": $HF_TOKEN, $HUGGING_FACE_HUB_TOKEN, $HF_HOME/token
  bool offline = false;           // true, or HF_HUB_OFFLINE=1: the cache only
  HubFiles files = HubFiles::Model;
  // These options with the environment's values where a field is empty / false.
  HubOptions with_environment() const;
};

struct ResolvedModel {
  std::string dir;        // the folder to load
  bool from_hub = false;  // true where `dir` is a hub snapshot
};

// `model` itself where a file or folder of that name exists (the loaders report what is wrong
// with it) or where it cannot be a repository id; else the snapshot of that repository.
// Throws tllm::Error naming the repository, revision and cause (HTTP status, network error,
// a size or hash mismatch) where neither the hub nor the cache provides one.
ResolvedModel resolve_model(const std::string& model, const HubOptions& opts);

// One GGUF file of a hub repository, as llama.cpp's -hf names it: "ns/name:QUANT" (the one
// .gguf whose file name holds QUANT, case-insensitively, e.g. Q4_K_M; projector files
// excluded; the parts of a split file, PREFIX-0000K-of-0000N.gguf, count as one) or
// "ns/name/FILE.gguf" (a path in the repository; of a split file, its first part).
struct HubGgufRef {
  std::string repo, quant, file;
};
// The reference `s` spells, if it spells one (and is not a local path).
std::optional<HubGgufRef> parse_hub_gguf_ref(const std::string& s);
// The file's path in the hub cache's snapshot (a split file's first part), fetched where
// missing (only that file, or every part of a split one); the cache alone offline or where
// the hub cannot be reached, as resolve_model.
std::string resolve_hub_gguf(const HubGgufRef& ref, const HubOptions& opts);

// huggingface_hub's rule for repository ids: "name" or "namespace/name", each part of
// letters, digits, '-', '_' and '.', starting and ending with a letter or digit, at most 96
// characters, no "--" or "..".
bool is_hub_repo_id(const std::string& s);

// Helpers, exposed for tests.
std::string hub_cache_dir(const HubOptions& opts);         // opts.cache_dir or the environment's
std::string hub_repo_folder(const std::string& repo_id);   // "models--Qwen--Qwen2.5-0.5B"
bool hub_wants_file(const std::string& path, HubFiles files);
std::string sha256_file_hex(const std::string& path);      // lowercase hex
std::string git_blob_id_file_hex(const std::string& path); // sha1("blob <size>\0" + contents)

}  // namespace tllm
