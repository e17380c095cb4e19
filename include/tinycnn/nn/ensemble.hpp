#pragma once
// Ensembles: one Graph that runs several models on the same input and averages their outputs
// (logits), so an ensemble saves, loads and predicts like any single model.
//
//   auto e = nn::ensemble<float>({a.get(), b.get()});   // layers renamed m0_<name>, m1_<name>, ...
//
// The members' parameters and buffers are SHARED with the new graph (as with cut_at); the members
// must take the same input shape and give the same output shape.
//
// Members trained on other input sizes or pixel scalings: give the ensemble's input shape and, per
// member, the layers that adapt that input to it (e.g. Resizing + Rescaling); they are named
// m<k>_<name> too and must end in the member's input shape.
//
// A member that is itself an ensemble (its output the "ensemble_average" layer added here) brings
// the outputs its average took, not their mean: an ensemble of three plus a fourth model weighs all
// four alike (a quarter each), as ensemble({a, b, c, d}) does, and not the three together as one.
//   std::vector<std::vector<std::unique_ptr<nn::Layer<float>>>> adapt(2);
//   adapt[1].push_back(std::make_unique<nn::Resizing<float>>(128, 128, "bilinear", true, "resize"));
//   auto e = nn::ensemble<float>({a.get(), b.get()}, {3, 224, 224}, std::move(adapt));
#include <memory>
#include <string>
#include <vector>

#include "average.hpp"
#include "transfer.hpp"

namespace tinycnn::nn {

template <class T>
std::unique_ptr<Graph<T>> ensemble(const std::vector<Model<T>*>& members, const Shape& input_shape,
                                   std::vector<std::vector<std::unique_ptr<Layer<T>>>> adapters) {
  if (members.size() < 2) throw ValueError("ensemble: needs at least two models, got " + std::to_string(members.size()));
  if (!adapters.empty() && adapters.size() != members.size())
    throw ValueError("ensemble: " + std::to_string(adapters.size()) + " adapter lists for " +
                     std::to_string(members.size()) + " models");
  adapters.resize(members.size());
  for (size_t k = 0; k < members.size(); ++k) {
    if (!members[k] || !members[k]->built() || members[k]->size() == 0)
      throw ValueError("ensemble: model " + std::to_string(k) + " is missing, not built or empty");
    if (members[k]->output_shape() != members[0]->output_shape())
      throw_shape("ensemble: model " + std::to_string(k), "output shape differs from model 0's",
                  members[k]->output_shape(), members[0]->output_shape());
  }
  auto g = std::make_unique<Graph<T>>(input_shape, members[0]->seed());
  std::vector<typename Graph<T>::Node> outs;
  for (size_t k = 0; k < members.size(); ++k) {
    const std::string prefix = "m" + std::to_string(k) + "_";
    typename Graph<T>::Node in = g->input();
    for (auto& a : adapters[k]) {
      if (!a) throw ValueError("ensemble: adapter of model " + std::to_string(k) + " is null");
      a->set_name(prefix + (a->name().empty() ? snake_case(a->type()) : a->name()));
      in = g->add(std::move(a), {in});
    }
    Model<T>& m = *members[k];
    if (g->output_shape_of(in) != m.input_shape())
      throw_shape("ensemble: model " + std::to_string(k),
                  adapters[k].empty() ? "input shape differs from the ensemble's" : "its adapters do not end in its input shape",
                  g->output_shape_of(in), m.input_shape());
    const size_t out = detail::output_entry(m);
    const auto& last = m.entries()[out];
    if (last.layer->type() != "Average" || last.layer->name() != "ensemble_average") {
      outs.push_back({detail::copy_layers_into(*g, m, out, in.id, prefix, {}, "ensemble")[out]});
      continue;
    }
    std::vector<bool> keep(m.entries().size(), true);
    keep[out] = false;
    const std::vector<int> node_of = detail::copy_layers_into(*g, m, out, in.id, prefix, keep, "ensemble");
    for (int id : last.inputs) outs.push_back({id < 0 ? in.id : node_of[static_cast<size_t>(id)]});
  }
  g->set_output(g->template add<Average>(outs, "ensemble_average"));
  g->eval();
  return g;
}

// Members that all take the same input: the ensemble takes it too.
template <class T>
std::unique_ptr<Graph<T>> ensemble(const std::vector<Model<T>*>& members) {
  // A missing model 0 or too few models: the general form says which.
  return ensemble(members, members.empty() || !members[0] ? Shape{} : members[0]->input_shape(), {});
}

}  // namespace tinycnn::nn
