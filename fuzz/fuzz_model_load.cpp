// libFuzzer target over the model-file loader: the safetensors container (header length, JSON
// header, dtypes, shapes, offsets) and tinycnn's metadata (architecture JSON, layer registry,
// shape checks against the architecture, checksum, NaN/Inf weights, model info).
// Any input must either load or throw a tinycnn::FormatError; anything else (another exception, a
// crash, an ASan/UBSan report, a leak) is a bug.
//   scripts/run-fuzz.sh model 60      # over tests/data/model_corpus
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <tinycnn/io/model_file.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tinycnn::io::ModelLoadLimits lim;
  lim.max_activation_elems = int64_t(1) << 22;  // keep per-input work small; the checks are the same
  try {
    tinycnn::io::SafetensorsFile f = tinycnn::io::read_safetensors_from_memory(data, size, "fuzz input", lim.read);
    (void)f;
  } catch (const tinycnn::FormatError&) {
  }
  try {
    tinycnn::io::LoadedModel m = tinycnn::io::load_model_from_memory(data, size, "fuzz input", lim);
    if (!m.model || !m.model->built()) std::abort();
  } catch (const tinycnn::FormatError&) {
  }
  return 0;
}
