#pragma once
// Transfer learning: cut a model at a layer, add a new head, freeze / unfreeze layers.
//
//   io::KerasModel k = io::import_keras_h5("mobilenet_v1_0.25_224_imagenet.h5");
//   auto g = nn::cut_at(*k.model, "global_average_pooling2d_1");  // features [256], weights shared
//   nn::freeze_all(*g);                                            // the base: frozen, inference mode
//   g->add<nn::Dense>({nn::output_node(*g)}, 6);                   // the new head (trainable)
//   optim::Adam<float> opt(g->parameters(/*trainable_only*/ true), 1e-3);
//   train::fit(*g, opt, train_src, o);
//   nn::set_trainable_from(*g, "conv_pw_13", true);                // later: fine-tune the top too
//
// cut_at() builds a new nn::Graph holding fresh layer objects (same types, configs, names and
// trainable flags) for the named layer and every layer it depends on, whose parameters and buffers
// SHARE storage with the original model's: training either one changes both (clone the tensors
// first if that is not wanted). The original can be destroyed; the storage lives on in the cut.
// Frozen layers (trainable false) are left out of parameters(true) and run in inference mode even
// while the model trains (batch norm on its moving statistics, which are then not updated; dropout
// off) — see Layer::training().
#include <memory>
#include <string>
#include <vector>

#include "../io/layer_registry.hpp"
#include "batch_normalization.hpp"
#include "graph.hpp"
#include "model.hpp"

namespace tinycnn::nn {

// The graph node a Graph's forward() currently returns (where to attach a new head).
template <class T>
typename Graph<T>::Node output_node(const Graph<T>& g) {
  return typename Graph<T>::Node{g.output_id()};
}

namespace detail {
// Adds to g a fresh layer of src's type and config, named `name`, fed by `ins`, whose parameters
// and buffers then SHARE src's storage (and whose trainable flag is src's). Returns its node id;
// `who` names the caller in errors.
template <class T>
int add_shared_copy(Graph<T>& g, Layer<T>& src, const std::string& name,
                    const std::vector<typename Graph<T>::Node>& ins, const char* who) {
  std::unique_ptr<Layer<T>> copy;
  try {
    copy = io::make_layer<T>(src.type(), src.config(), name);
  } catch (const Error& e) {
    throw ValueError(std::string(who) + ": cannot copy layer '" + src.name() + "' (" + src.type() + "): " + e.what());
  }
  Layer<T>& dst = *copy;
  const int id = g.add(std::move(copy), ins).id;  // builds dst: fresh parameters, replaced below
  dst.set_trainable(src.trainable());
  auto share = [&](std::vector<NamedVar<T>> to, std::vector<NamedVar<T>> from, const char* what) {
    if (to.size() != from.size())
      throw ValueError(std::string(who) + ": layer '" + src.name() + "': " + what + " differ in number");
    for (size_t k = 0; k < to.size(); ++k) {
      if (to[k].first != from[k].first || to[k].second.shape() != from[k].second.shape())
        throw ValueError(std::string(who) + ": layer '" + src.name() + "': " + what + " '" + from[k].first +
                         "' differs after copying");
      to[k].second.value() = from[k].second.value();  // same storage
      to[k].second.set_requires_grad(from[k].second.requires_grad());
    }
  };
  share(dst.parameters(), src.parameters(), "parameters");
  share(dst.buffers(), src.buffers(), "buffers");
  return id;
}

// Adds shared copies (add_shared_copy) of model's entries 0 .. last to g, in order, skipping those
// with keep[i] false (none skipped when keep is empty); an entry fed by the model's input is fed by
// node `input` of g, and every copy's name gets `prefix`. Returns each entry's node id (-1 where
// skipped). With a non-empty `context`, an error while adding entry i becomes a ShapeError
// "<context>: at layer '<name>': <what>". The walk of cut_at, with_input_shape and ensemble.
template <class T>
std::vector<int> copy_layers_into(Graph<T>& g, const Model<T>& model, size_t last, int input,
                                  const std::string& prefix, const std::vector<bool>& keep, const char* who,
                                  const std::string& context = "") {
  const auto& entries = model.entries();
  std::vector<int> node_of(entries.size(), -1);
  for (size_t i = 0; i <= last; ++i) {
    if (!keep.empty() && !keep[i]) continue;
    std::vector<typename Graph<T>::Node> ins;
    for (int id : entries[i].inputs) ins.push_back({id < 0 ? input : node_of[static_cast<size_t>(id)]});
    try {
      node_of[i] = add_shared_copy(g, *entries[i].layer, prefix + entries[i].layer->name(), ins, who);
    } catch (const Error& e) {
      if (context.empty()) throw;
      throw ShapeError(context + ": at layer '" + entries[i].layer->name() + "': " + e.what());
    }
  }
  return node_of;
}

// The last entry a model's forward() computes: a Graph's output node, a Sequential's last layer.
template <class T>
size_t output_entry(const Model<T>& model) {
  const auto* graph = dynamic_cast<const Graph<T>*>(&model);
  return graph ? static_cast<size_t>(graph->output_id()) : model.entries().size() - 1;
}
}  // namespace detail

// A new Graph computing `model`'s layer `index` (entries() order), sharing weights; see above.
template <class T>
std::unique_ptr<Graph<T>> cut_at(Model<T>& model, size_t index) {
  const auto& entries = model.entries();
  if (!model.built()) throw ValueError("cut_at: the model is not built");
  if (index >= entries.size())
    throw ValueError("cut_at: layer index " + std::to_string(index) + " is out of range (" + std::to_string(entries.size()) + " layers)");
  // The layers the cut point depends on.
  std::vector<bool> needed(entries.size(), false);
  needed[index] = true;
  for (size_t i = index + 1; i-- > 0;)
    if (needed[i])
      for (int id : entries[i].inputs)
        if (id >= 0) needed[static_cast<size_t>(id)] = true;
  auto g = std::make_unique<Graph<T>>(model.input_shape(), model.seed());
  const std::vector<int> node_of = detail::copy_layers_into(*g, model, index, -1, "", needed, "cut_at");
  g->set_output({node_of[index]});
  if (model.is_training()) g->train();
  else g->eval();
  return g;
}

// The same, cut at the layer with this name (e.g. a GlobalAveragePooling2D).
template <class T>
std::unique_ptr<Graph<T>> cut_at(Model<T>& model, const std::string& layer_name) {
  return cut_at(model, static_cast<size_t>(model.index_of(layer_name)));
}

// The same model for another per-sample input shape, sharing weights: a new Graph of fresh copies of
// every layer (as cut_at's) built for `input_shape`. Works where no weight depends on the spatial size
// — convolutions and pooling up to a global pooling, then a head (MobileNet, the resnets) — so a model
// trained at 224x224 can be evaluated or fine-tuned at 288x288 ("progressive resizing"). A layer
// whose weights would change shape (a Dense after Flatten) or that cannot take the new size is named
// in the error.
template <class T>
std::unique_ptr<Graph<T>> with_input_shape(Model<T>& model, const Shape& input_shape) {
  if (!model.built()) throw ValueError("with_input_shape: the model is not built");
  const size_t out = detail::output_entry(model);
  auto g = std::make_unique<Graph<T>>(input_shape, model.seed());
  const std::vector<int> node_of = detail::copy_layers_into(
      *g, model, out, -1, "", {}, "with_input_shape",
      "with_input_shape: the model cannot take input " + shape_str(input_shape) + " (it was built for " +
          shape_str(model.input_shape()) + ")");
  g->set_output({node_of[out]});
  if (model.is_training()) g->train();
  else g->eval();
  return g;
}

// Freezing (trainable false) or unfreezing every layer.
template <class T>
void freeze_all(Model<T>& model) {
  model.set_trainable_range(0, model.size(), false);
}
template <class T>
void unfreeze_all(Model<T>& model) {
  model.set_trainable_range(0, model.size(), true);
}
// Layers first..last (names, both included, in entries() order).
template <class T>
void set_trainable_between(Model<T>& model, const std::string& first, const std::string& last, bool trainable) {
  const int a = model.index_of(first), b = model.index_of(last);
  if (a > b) throw ValueError("set_trainable_between: layer '" + first + "' comes after '" + last + "'");
  model.set_trainable_range(static_cast<size_t>(a), static_cast<size_t>(b) + 1, trainable);
}
// Every layer up to and including `last`.
template <class T>
void set_trainable_until(Model<T>& model, const std::string& last, bool trainable) {
  model.set_trainable_range(0, static_cast<size_t>(model.index_of(last)) + 1, trainable);
}
// Every layer from `first` (included) to the end.
template <class T>
void set_trainable_from(Model<T>& model, const std::string& first, bool trainable) {
  model.set_trainable_range(static_cast<size_t>(model.index_of(first)), model.size(), trainable);
}

// Sets the moving-statistics momentum of every BatchNormalization layer (Keras' convention: 0.99 is
// Keras' default, 0.9 is PyTorch's default momentum=0.1). Returns how many layers it changed.
// Why: with Adam 1e-3 the weights move faster than a 0.99 average (~100 steps) can follow, and the
// inference-time statistics then lag the network (see docs/results.md, model004).
template <class T>
int set_batch_norm_momentum(Model<T>& model, double momentum) {
  int n = 0;
  for (const auto& e : model.entries())
    if (auto* bn = dynamic_cast<BatchNormalization<T>*>(e.layer.get())) {
      bn->set_momentum(momentum);
      ++n;
    }
  return n;
}

}  // namespace tinycnn::nn
