#pragma once
// parallel.pipeline_layout: Megatron-Core's --pipeline-model-parallel-layout
// (megatron/core/transformer/pipeline_parallel_layer_layout.py), read and
// checked as Megatron-Core reads and checks it.
//
// The text lists the virtual stages in order, separated by "|": "E" the
// embedding, "t" a transformer layer of the model, "m" an MTP module, "L"
// the loss. "x*n" repeats a character, "(...)*n" a group (which may hold
// "|"); commas are cosmetic. DeepSeek-V3 on PP8 x VPP4 in the Megatron-Core
// MoE report: "Et*3|(tt|)*29m|L".

#include <string>
#include <vector>

#include "sim/exec/step_inputs.h"

namespace moesim::scenario {

// The stages `text` describes. Throws ConfigError naming `path` for a
// character outside E, t, m, L, |, ",", digits and the repeat syntax, or a
// text that unrolls past 1,000,000 characters.
std::vector<exec::LayoutStage> parse_pipeline_layout(const std::string& text,
                                                     const std::string& path);

// Megatron-Core's validate_layer_layout and its stage-count check, for the
// layout in `parallel` against `model`: pp x virtual_stages stages (DualPipe:
// pp), none empty (moesim's own rule, as for an even split), the embedding
// first and the loss last, each once; as many "t" as the
// model's layers and "m" as its MTP modules, every "m" after every "t", all
// in one virtual stage that is its pipeline rank's last (not checked under
// DualPipe, where each rank holds one stage of each direction). Throws
// InvalidStrategy (code pipeline_layout) saying which rule.
void check_pipeline_layout(const exec::ModelShape& model, const exec::ParallelConfig& parallel);

}  // namespace moesim::scenario
