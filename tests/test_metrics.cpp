// Metrics on hand-computed cases.
#include <doctest/doctest.h>

#include <tinycnn/train/metrics.hpp>

using namespace tinycnn;
using namespace tinycnn::train;

namespace {
Tensor<float> scores3() {
  // 6 samples, 3 classes; arg-max predictions: 0, 1, 2, 1, 0, 2
  return Tensor<float>::from({6, 3}, {0.7f, 0.2f, 0.1f,   //
                                      0.1f, 0.6f, 0.3f,   //
                                      0.2f, 0.3f, 0.5f,   //
                                      0.3f, 0.4f, 0.3f,   //
                                      0.5f, 0.1f, 0.4f,   //
                                      0.25f, 0.35f, 0.4f});
}
const std::vector<int32_t> labels3{0, 1, 2, 0, 2, 2};  // right: samples 0, 1, 2, 5
}  // namespace

TEST_CASE("metrics: accuracy and top-k accuracy") {
  const Tensor<float> s = scores3();
  CHECK(accuracy(s, labels3) == doctest::Approx(4.0 / 6));
  // top-2: sample 3 (label 0: 0.3 ties with class 2's 0.3, class 0 ranks first by index -> 2nd) yes;
  // sample 4 (label 2: 0.4 is 2nd) yes.
  CHECK(top_k_accuracy(s, labels3, 2) == doctest::Approx(1.0));
  CHECK(top_k_accuracy(s, labels3, 3) == doctest::Approx(1.0));
  CHECK(accuracy(std::vector<int32_t>{1, 2, 3}, std::vector<int32_t>{1, 0, 3}) == doctest::Approx(2.0 / 3));
  CHECK(argmax(s) == std::vector<int32_t>{0, 1, 2, 1, 0, 2});
  CHECK_THROWS_AS(accuracy(s, std::vector<int32_t>{0, 1}), ValueError);
  CHECK_THROWS_AS(accuracy(s, std::vector<int32_t>{0, 1, 2, 0, 2, 3}), ValueError);
}

TEST_CASE("metrics: confusion matrix, per-class precision/recall/F1, macro and weighted F1") {
  const ConfusionMatrix cm = confusion_matrix(scores3(), labels3);
  // rows = truth, columns = prediction
  CHECK(cm.at(0, 0) == 1);
  CHECK(cm.at(0, 1) == 1);
  CHECK(cm.at(1, 1) == 1);
  CHECK(cm.at(2, 0) == 1);
  CHECK(cm.at(2, 2) == 2);
  CHECK(cm.total() == 6);
  const ClassificationReport r = cm.report();
  // class 0: tp 1, predicted 2, true 2 -> P 0.5, R 0.5, F1 0.5
  // class 1: tp 1, predicted 2, true 1 -> P 0.5, R 1, F1 2/3
  // class 2: tp 2, predicted 2, true 3 -> P 1, R 2/3, F1 0.8
  CHECK(r.precision[0] == doctest::Approx(0.5));
  CHECK(r.recall[1] == doctest::Approx(1.0));
  CHECK(r.precision[2] == doctest::Approx(1.0));
  CHECK(r.recall[2] == doctest::Approx(2.0 / 3));
  CHECK(r.f1[0] == doctest::Approx(0.5));
  CHECK(r.f1[1] == doctest::Approx(2.0 / 3));
  CHECK(r.f1[2] == doctest::Approx(0.8));
  CHECK(r.support == std::vector<int64_t>{2, 1, 3});
  CHECK(r.accuracy == doctest::Approx(4.0 / 6));
  CHECK(r.macro_f1 == doctest::Approx((0.5 + 2.0 / 3 + 0.8) / 3));
  CHECK(r.weighted_f1 == doctest::Approx((2 * 0.5 + 1 * 2.0 / 3 + 3 * 0.8) / 6));
  CHECK(macro_f1(scores3(), labels3) == doctest::Approx(r.macro_f1));
  CHECK(weighted_f1(scores3(), labels3) == doctest::Approx(r.weighted_f1));
  // A class never predicted and never present: 0/0 -> 0.
  const ClassificationReport r4 = confusion_matrix({0, 1}, {0, 1}, 3).report();
  CHECK(r4.f1[2] == 0.0);
  CHECK(r4.macro_f1 == doctest::Approx(2.0 / 3));
}

TEST_CASE("metrics: multi-label F1 at a threshold") {
  // 4 samples, 2 classes.
  const Tensor<float> p = Tensor<float>::from({4, 2}, {0.9f, 0.2f, 0.6f, 0.7f, 0.3f, 0.05f, 0.15f, 0.4f});
  const Tensor<float> y = Tensor<float>::from({4, 2}, {1, 0, 0, 1, 1, 0, 0, 1});
  // threshold 0.5: class 0 predicted {0,1}, true {0,2}: tp 1 fp 1 fn 1 -> F1 0.5
  //                class 1 predicted {1},   true {1,3}: tp 1 fp 0 fn 1 -> F1 2/3
  const MultiLabelReport r = multilabel_report(p, y, 0.5);
  CHECK(r.f1[0] == doctest::Approx(0.5));
  CHECK(r.f1[1] == doctest::Approx(2.0 / 3));
  CHECK(r.micro_f1 == doctest::Approx(2.0 * 2 / (2.0 * 2 + 1 + 2)));
  CHECK(r.macro_f1 == doctest::Approx((0.5 + 2.0 / 3) / 2));
  CHECK(r.binary_accuracy == doctest::Approx(5.0 / 8));
  CHECK(r.exact_match == doctest::Approx(1.0 / 4));
  CHECK(multilabel_f1(p, y, 0.5) == doctest::Approx(r.micro_f1));
  // threshold 0.1 catches more: class 0 predicted {0,1,2,3}: tp 2 fp 2 -> F1 2/3; class 1 {0,1,3}: tp 2 fp 1 -> 0.8
  const MultiLabelReport lo = multilabel_report(p, y, 0.1);
  CHECK(lo.f1[0] == doctest::Approx(2.0 / 3));
  CHECK(lo.f1[1] == doctest::Approx(0.8));
  // per-class thresholds
  const MultiLabelReport pc = multilabel_report(p, y, std::vector<double>{0.25, 0.35});
  CHECK(pc.f1[0] == doctest::Approx(0.8));
  CHECK(pc.f1[1] == doctest::Approx(1.0));
  CHECK_THROWS_AS(multilabel_report(p, y, std::vector<double>{0.1, 0.2, 0.3}), ValueError);
}

TEST_CASE("metrics: per-class threshold chooser maximises each class' F1") {
  const Tensor<float> p = Tensor<float>::from({4, 2}, {0.9f, 0.2f, 0.6f, 0.7f, 0.3f, 0.05f, 0.15f, 0.4f});
  const Tensor<float> y = Tensor<float>::from({4, 2}, {1, 0, 0, 1, 1, 0, 0, 1});
  const std::vector<double> th = choose_thresholds(p, y);
  REQUIRE(th.size() == 2);
  // class 0: positives 0.9 and 0.3, negatives 0.6 and 0.15 -> best F1 0.8 (th in (0.15, 0.3]) vs
  // 2/3 at th in (0.6, 0.9]; of 0.2, 0.25, 0.3 the chooser takes the one closest to 0.5
  CHECK(th[0] == doctest::Approx(0.3));
  // class 1: positives 0.7, 0.4; negatives 0.2, 0.05 -> perfect for th in (0.2, 0.4]; closest to 0.5 is 0.4
  CHECK(th[1] == doctest::Approx(0.4));
  const MultiLabelReport r = multilabel_report(p, y, th);
  CHECK(r.f1[0] == doctest::Approx(0.8));
  CHECK(r.f1[1] == doctest::Approx(1.0));
  // A class without positives keeps 0.5.
  const Tensor<float> y0 = Tensor<float>::from({4, 2}, {1, 0, 0, 0, 1, 0, 0, 0});
  CHECK(choose_thresholds(p, y0)[1] == doctest::Approx(0.5));
}

TEST_CASE("metrics: streaming accumulator equals the whole-set metrics") {
  MetricAccumulator acc({"accuracy", "top2_accuracy", "macro_f1", "weighted_f1"}, false);
  const Tensor<float> s = scores3();
  acc.add(1.0, s.slice0(0, 4), std::vector<int32_t>(labels3.begin(), labels3.begin() + 4), Tensor<float>(), false);
  acc.add(2.5, s.slice0(4, 6), std::vector<int32_t>(labels3.begin() + 4, labels3.end()), Tensor<float>(), false);
  const auto r = acc.results("val_");
  CHECK(r.at("val_loss") == doctest::Approx((4 * 1.0 + 2 * 2.5) / 6));
  CHECK(r.at("val_accuracy") == doctest::Approx(4.0 / 6));
  CHECK(r.at("val_top2_accuracy") == doctest::Approx(1.0));
  CHECK(r.at("val_macro_f1") == doctest::Approx(macro_f1(s, labels3)));
  CHECK(r.at("val_weighted_f1") == doctest::Approx(weighted_f1(s, labels3)));
  // State round trip.
  MetricAccumulator b({"accuracy", "top2_accuracy", "macro_f1", "weighted_f1"}, false);
  b.set_state(acc.state());
  CHECK(b.results() == acc.results());
  CHECK_THROWS_AS(MetricAccumulator({"auc"}, false), ValueError);
  CHECK(MetricAccumulator::top_k_of("top5_accuracy") == 5);
  CHECK(MetricAccumulator::top_k_of("topx_accuracy") == 0);
}
