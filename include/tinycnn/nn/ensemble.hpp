#pragma once
// Ensembles: one Graph that runs several models on the same input and averages their outputs
// (logits), so an ensemble saves, loads and predicts like any single model.
//
//   auto e = nn::ensemble<float>({a.get(), b.get()});   // layers renamed m0_<name>, m1_<name>, ...
//
// The members' parameters and buffers are SHARED with the new graph (as with cut_at); the members
// must take the same input shape and give the same output shape.
#include <memory>
#include <string>
#include <vector>

#include "average.hpp"
#include "transfer.hpp"

namespace tinycnn::nn {

template <class T>
std::unique_ptr<Graph<T>> ensemble(const std::vector<Model<T>*>& members) {
  if (members.size() < 2) throw ValueError("ensemble: needs at least two models, got " + std::to_string(members.size()));
  for (size_t k = 0; k < members.size(); ++k) {
    if (!members[k] || !members[k]->built() || members[k]->size() == 0)
      throw ValueError("ensemble: model " + std::to_string(k) + " is missing, not built or empty");
    if (members[k]->input_shape() != members[0]->input_shape())
      throw_shape("ensemble: model " + std::to_string(k), "input shape differs from model 0's",
                  members[k]->input_shape(), members[0]->input_shape());
    if (members[k]->output_shape() != members[0]->output_shape())
      throw_shape("ensemble: model " + std::to_string(k), "output shape differs from model 0's",
                  members[k]->output_shape(), members[0]->output_shape());
  }
  auto g = std::make_unique<Graph<T>>(members[0]->input_shape(), members[0]->seed());
  std::vector<typename Graph<T>::Node> outs;
  for (size_t k = 0; k < members.size(); ++k) {
    Model<T>& m = *members[k];
    const auto& entries = m.entries();
    const auto* graph = dynamic_cast<const Graph<T>*>(&m);
    const size_t out = graph ? static_cast<size_t>(graph->output_id()) : entries.size() - 1;
    std::vector<int> node_of(entries.size(), -1);
    for (size_t i = 0; i <= out; ++i) {
      std::vector<typename Graph<T>::Node> ins;
      for (int id : entries[i].inputs) ins.push_back({id < 0 ? -1 : node_of[static_cast<size_t>(id)]});
      const std::string name = "m" + std::to_string(k) + "_" + entries[i].layer->name();
      node_of[i] = detail::add_shared_copy(*g, *entries[i].layer, name, ins, "ensemble");
    }
    outs.push_back({node_of[out]});
  }
  g->set_output(g->template add<Average>(outs, "ensemble_average"));
  g->eval();
  return g;
}

}  // namespace tinycnn::nn
