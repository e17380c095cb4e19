#pragma once
// Inference fusion: where no gradient is needed, Sequential and Graph run a convolution followed by
// batch norm on its moving statistics (and optionally a ReLU / ReLU6) as ONE convolution whose
// kernel and bias have the batch norm folded in, with the ReLU in its store:
//   w'[k] = w[k] * gamma[k] / sqrt(var[k] + eps),  b'[k] = (b[k] - mean[k]) * gamma[k] / sqrt(..) + beta[k]
// as inference engines do (TF-Lite, oneDNN, torch.fx's fuse). The batch norm's and the ReLU's passes
// over the activations disappear (13 % of the shipped model's predict); the results differ from the
// separate layers by rounding only. Model::set_inference_fusion(false) turns it off.
// "No gradient needed": under NoGradGuard (predict, evaluate), or, while recording, for a chain whose
// convolution and batch norm are both frozen and whose input needs no gradient (the frozen base of
// transfer learning, which the training step runs forward only).
//
// A chain conv -> bn [-> relu] fuses when the conv has no activation of its own
// (Layer::can_fold_affine), each link is its predecessor's only consumer, the batch norm is in
// inference (Layer::inference_affine) and the conv's value is not the model's output; the ReLU joins
// when the batch norm's value has no other consumer and is not returned either.
// A batch norm in inference whose value reaches, through links that are the identity in inference
// (Dropout) and each the only consumer of the one before, a layer that can fold an affine of its input
// (Layer::can_fold_input_affine: a 'valid' Conv2D, a Dense) folds into that layer's kernel and bias
// instead (w' = w * scale per input channel, b' = b + sum w * shift; ops::fold_input_channel_affine),
// and passes its input through: the Conv -> MaxPool -> BatchNorm -> Dropout -> Conv blocks of Keras
// models (model004) lose the batch norm's pass over the pooled activations. The layer then runs
// with the folded weights whichever way it runs (its own forward, fused with its max pooling or with
// a following batch norm). Only where no gradient is recorded (predict, evaluate), where that batch
// norm is not already folded into the convolution before it, and where the batch norm's input (the
// whole batch) has at least as many values as the layer has parameters: the fold reads and writes the
// weights on every forward where the batch norm read and wrote the activations, and at batch 1
// model004's conv4 (295 K weights after 37 K activations) made the forward 1.08x slower with every
// batch norm folded (docs/performance.md, fiftieth session).
// Pool fusion (Model::set_pool_fusion, on by default): a Conv2D (with a ReLU, a ReLU6 or no
// activation) whose only consumer is a MaxPool2D runs with it as one op, ops::conv2d_max_pool2d, in
// training as well (it has its own backward): the convolution's full-size output is neither kept
// for the backward nor, where its CPU pass allows, written to memory at all. The same values; the
// gradients up to the bias's summation order. A convolution whose output is the model's output or
// has another consumer is not fused.
// Models call inference_fusion_plan once per forward (it reads the current weights and statistics)
// and run a planned chain with run_fusion_step where fusion_step_runs says so.
#include <vector>

#include "model.hpp"

namespace tinycnn::nn {

template <class T>
struct FusionStep {
  int bn = -1, relu = -1;  // the absorbed layers (relu -1: none)
  int pool = -1;           // or, for pool fusion, the absorbed max pooling (bn and relu -1 then)
  int tail = -1;           // the node whose value the fused step produces (bn, relu or pool, or the node
                           // itself when it only folds its input's affine); -1: no chain here
  T relu_max = T(0);       // ReLU cap (0 = none)
  Tensor<T> scale, shift;  // the batch norm's affine, per channel
  ops::MaxPoolSpec pool_spec;
  ChannelAffine<T> input;  // a preceding batch norm's affine folded into this node's weights (if defined)
  bool pass = false;       // this node is such a batch norm: its value is its input's
};

// One step per node: plan[i].tail >= 0 where node i is a convolution heading a chain. entries in
// topological order with their input node ids (-1 = model input); output: the returned node;
// recording (grad_enabled()): folding only for chains of frozen layers; fold, pool: which fusions to plan;
// batch: the input's batch size (0: large).
template <class T>
std::vector<FusionStep<T>> inference_fusion_plan(const std::vector<LayerEntry<T>>& entries, int output,
                                                 bool recording = false, bool fold = true, bool pool = true,
                                                 int64_t batch = 0) {
  const size_t n = entries.size();
  std::vector<int> uses(n, 0), consumer(n, -1);
  for (size_t i = 0; i < n; ++i)
    for (int id : entries[i].inputs)
      if (id >= 0) {
        ++uses[static_cast<size_t>(id)];
        consumer[static_cast<size_t>(id)] = static_cast<int>(i);
      }
  if (output >= 0) ++uses[static_cast<size_t>(output)];  // the returned value is used by the caller
  // the single consumer of node i when it takes node i as its only input; -1 otherwise
  auto only_consumer = [&](int i) {
    const int c = uses[static_cast<size_t>(i)] == 1 ? consumer[static_cast<size_t>(i)] : -1;
    return c >= 0 && entries[static_cast<size_t>(c)].inputs.size() == 1 ? c : -1;
  };
  std::vector<FusionStep<T>> plan(n);
  for (size_t i = 0; i < n; ++i) {
    FusionStep<T>& s = plan[i];
    if (pool && entries[i].layer->can_fuse_max_pool()) {
      const int c = only_consumer(static_cast<int>(i));
      if (c >= 0 && entries[static_cast<size_t>(c)].layer->fusable_max_pool(s.pool_spec)) {
        s.pool = s.tail = c;
        continue;
      }
    }
    if (!fold || !entries[i].layer->can_fold_affine() || (recording && entries[i].layer->trainable())) continue;
    const int bn = only_consumer(static_cast<int>(i));
    if (bn < 0 || (recording && entries[static_cast<size_t>(bn)].layer->trainable()) ||
        !entries[static_cast<size_t>(bn)].layer->inference_affine(s.scale, s.shift))
      continue;
    if (s.scale.numel() != entries[i].output_shape.at(0)) continue;  // an affine over another axis
    s.bn = s.tail = bn;
    const int r = only_consumer(bn);
    if (r >= 0 && entries[static_cast<size_t>(r)].layer->fusable_relu(s.relu_max)) s.relu = s.tail = r;
  }
  if (!fold || recording) return plan;
  // Batch norms folded into a later layer (input side), unless a convolution before already took them.
  std::vector<char> absorbed(n, 0);
  for (const FusionStep<T>& s : plan)
    for (int id : {s.bn, s.relu, s.pool})
      if (id >= 0) absorbed[static_cast<size_t>(id)] = 1;
  for (size_t b = 0; b < n; ++b) {
    ChannelAffine<T> a;
    if (absorbed[b] || !entries[b].layer->inference_affine(a.scale, a.shift) || entries[b].output_shape.empty() ||
        a.scale.numel() != entries[b].output_shape[0])
      continue;
    int c = only_consumer(static_cast<int>(b));
    while (c >= 0 && entries[static_cast<size_t>(c)].layer->inference_identity()) c = only_consumer(c);
    if (c < 0 || plan[static_cast<size_t>(c)].input.defined() ||
        !entries[static_cast<size_t>(c)].layer->can_fold_input_affine(a.scale.numel()))
      continue;
    if (batch > 0 && batch * shape_numel(entries[b].output_shape) < entries[static_cast<size_t>(c)].layer->count_params())
      continue;  // the batch norm's pass costs less than the fold
    FusionStep<T>& s = plan[static_cast<size_t>(c)];
    s.input = std::move(a);
    if (s.tail < 0) s.tail = c;
    plan[b].pass = true;
  }
  return plan;
}

// The tail's value of the chain headed by node i (plan[i].tail >= 0), from node i's input x.
template <class T>
Var<T> run_fusion_step(const std::vector<LayerEntry<T>>& entries, size_t i, const FusionStep<T>& s, const Var<T>& x) {
  const ChannelAffine<T>* input = s.input.defined() ? &s.input : nullptr;
  if (s.pool >= 0) return entries[i].layer->forward_max_pooled(x, s.pool_spec, input);
  if (s.bn >= 0) return entries[i].layer->forward_folded(x, s.scale, s.shift, s.relu >= 0, s.relu_max, input);
  return entries[i].layer->forward_input_folded(x, s.input);
}

// Whether node i is a batch norm folded into a later layer (its value is its input's).
template <class T>
bool fusion_passes(const std::vector<FusionStep<T>>& plan, size_t i) {
  return !plan.empty() && plan[i].pass;
}

// Whether a forward of x plans fusion: either fusion on, x on the CPU.
template <class T>
bool inference_fusion_applies(bool enabled, const Var<T>& x) {
  return enabled && x.value().device() == Device::CPU;
}

// Whether the planned step runs fused on the chain's input x: a folded chain while recording only if
// x needs no gradient (else the frozen chain still passes one through to the layers below); a pool
// step always (its op has a backward).
template <class T>
bool fusion_step_runs(const std::vector<FusionStep<T>>& plan, size_t i, const Var<T>& x) {
  return !plan.empty() && plan[i].tail >= 0 && (plan[i].pool >= 0 || !(grad_enabled() && x.requires_grad()));
}

// The nodes a planned step computes besides its head (they are skipped in the forward).
template <class T>
std::vector<int> fusion_step_absorbs(const FusionStep<T>& s) {
  std::vector<int> a;
  for (int id : {s.bn, s.relu, s.pool})
    if (id >= 0) a.push_back(id);
  return a;
}

}  // namespace tinycnn::nn
