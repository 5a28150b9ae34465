// A llama.cpp GGUF model file as a model folder: `--model qwen2.5-0.5b-instruct-q4_k_m.gguf`.
//
// The file's metadata becomes the hub-layout files the rest of tinyllm reads, written once
// into a cache folder ($XDG_CACHE_HOME/tinyllm/gguf or ~/.cache/tinyllm/gguf, one per file
// path, size and modification time): config.json (architecture, sizes, RoPE, epsilon,
// tie_word_embeddings from the absence of output.weight), tokenizer.json (the byte-level BPE
// vocabulary, merges and special tokens, with the pre-tokenizer of tokenizer.ggml.pre),
// tokenizer_config.json (bos / eos, add_bos_token, the chat template) and
// generation_config.json (eos and end-of-turn ids). The weights stay in the GGUF file: the
// folder links it as model.gguf and gguf_tensors.json maps HF tensor names to GGUF ones, which
// io::Checkpoint reads (decoding quantized blocks to f32 as each tensor is loaded; undoing the
// rotary row order llama.cpp's converter gives Llama's q / k).
//
// Supported: general.architecture qwen2, qwen3 and llama with tokenizer.ggml.model "gpt2"
// (byte-level BPE; pre-tokenizers qwen2, llama-bpe / llama3, and gpt-2's). Anything else (MoE
// architectures, SentencePiece vocabularies, Llama 3.1's rope_freqs other than the llama3 form)
// is refused naming the key and value.
#pragma once

#include <string>

namespace tllm {

// True where `path` names a regular file that starts with the GGUF magic.
bool is_gguf_file(const std::string& path);

// The folder for `gguf_path` (written where missing or out of date); `cache_root` "" for the
// default. Throws InvalidArgument naming the file and the key or tensor at fault.
std::string materialize_gguf(const std::string& gguf_path, const std::string& cache_root = "");

}  // namespace tllm
