#pragma once
// report.html: one self-contained page (inline SVG and base64 PNG, no script, no network) with the
// loss/accuracy curves per epoch (training vs validation), the confusion matrix as a heat map,
// per-class precision/recall/F1, a grid of misclassified validation images ("True: X / Predicted: Y"
// with the probability, each beside its Grad-CAM overlay), the model summary and the run's
// configuration. Every text is HTML-escaped; the file is written atomically (temp file + rename).
//
//   ReportData r;  r.class_names = ...;  r.loss = ...;  r.confusion = cm;  r.model_summary = ...;
//   add_misclassified(r, model, image, x, truth, predicted, probability, "photo.jpg");  // runs Grad-CAM
//   write_report("run/report.html", r);
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <tinycnn/train/metrics.hpp>
#ifdef TINYCNN_HAS_JSON
#include <tinycnn/train/history.hpp>
#endif

#include "gradcam.hpp"

namespace intel_scenes {

struct Misclassified {
  std::string name;                // file name (shown under the caption)
  std::string true_label, predicted_label;
  double probability = 0;          // the model's probability for the predicted class
  tinycnn::data::Image image;      // the image as the model saw it
  tinycnn::data::Image overlay;    // its Grad-CAM overlay (empty: none)
};

struct ReportData {
  std::string title = "intel_scenes training report";
  std::vector<std::string> class_names;
  // One value per epoch (NaN where missing); empty series are left out of the charts.
  std::vector<double> loss, val_loss, accuracy, val_accuracy;
  tinycnn::train::ConfusionMatrix confusion;     // counts[true][predicted]; num_classes() == 0: none
  tinycnn::train::ClassificationReport metrics;  // empty: computed from `confusion`
  std::vector<Misclassified> misclassified;
  std::string model_summary;                     // model.summary() text
  std::vector<std::pair<std::string, std::string>> config;  // the run's settings, in display order
};

#ifdef TINYCNN_HAS_JSON
// Takes the curves from fit()'s History ("loss", "val_loss", "accuracy"/"binary_accuracy", "val_...").
inline void set_curves(ReportData& r, const tinycnn::train::History& h) {
  r.loss = h.has("loss") ? h["loss"] : std::vector<double>{};
  r.val_loss = h.has("val_loss") ? h["val_loss"] : std::vector<double>{};
  const std::string acc = h.has("accuracy") ? "accuracy" : "binary_accuracy";
  r.accuracy = h.has(acc) ? h[acc] : std::vector<double>{};
  r.val_accuracy = h.has("val_" + acc) ? h["val_" + acc] : std::vector<double>{};
}
#endif

// Adds a misclassified image with its Grad-CAM (explaining the predicted class). `image` is the
// picture as fed to the model (its size is the input's), `x` the model input [1, C, H, W] made from it.
template <class T>
void add_misclassified(ReportData& r, tinycnn::nn::Model<T>& model, const tinycnn::data::Image& image,
                       const tinycnn::Tensor<T>& x, int truth, int predicted, double probability, const std::string& name) {
  Misclassified m;
  m.name = name;
  auto label = [&](int k) {
    return k >= 0 && static_cast<size_t>(k) < r.class_names.size() ? r.class_names[static_cast<size_t>(k)] : std::to_string(k);
  };
  m.true_label = label(truth);
  m.predicted_label = label(predicted);
  m.probability = probability;
  m.image = image;
  m.overlay = overlay_cam(image, grad_cam(model, x, predicted));
  r.misclassified.push_back(std::move(m));
}

inline std::string html_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

namespace detail {

inline std::string fmt(double v, const char* f = "%.4g") {
  if (!std::isfinite(v)) return "n/a";
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

struct Series {
  std::string name, color;
  const std::vector<double>* v;
  bool dashed;
};

// A line chart of per-epoch series (epochs 1..N on x), inline SVG.
inline std::string line_chart(const std::string& title, const std::vector<Series>& series, bool unit_range) {
  const double W = 520, H = 300, L = 60, R = 20, Tm = 30, B = 45;
  size_t n = 0;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& s : series) {
    n = std::max(n, s.v->size());
    for (double v : *s.v)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  std::ostringstream o;
  o << "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 "
    << W << ' ' << H << "\" role=\"img\" aria-label=\"" << html_escape(title) << "\">";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>";
  o << "<text x=\"" << W / 2 << "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">" << html_escape(title) << "</text>";
  if (n == 0 || !std::isfinite(lo)) {
    o << "<text x=\"" << W / 2 << "\" y=\"" << H / 2 << "\" text-anchor=\"middle\" fill=\"#888\">no data</text></svg>";
    return o.str();
  }
  if (unit_range) lo = std::min(lo, 0.0), hi = std::max(hi, 1.0);
  if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
  const double pad = unit_range ? 0 : 0.05 * (hi - lo);
  lo -= pad;
  hi += pad;
  auto X = [&](size_t i) { return n == 1 ? L + (W - L - R) / 2 : L + (W - L - R) * double(i) / double(n - 1); };
  auto Y = [&](double v) { return Tm + (H - Tm - B) * (hi - v) / (hi - lo); };
  // axes, grid and ticks
  for (int k = 0; k <= 5; ++k) {
    const double v = lo + (hi - lo) * k / 5.0, y = Y(v);
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << y << "\" y2=\"" << y << "\" stroke=\"#e5e5e5\"/>";
    o << "<text x=\"" << L - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\" font-size=\"11\">" << fmt(v, "%.3g") << "</text>";
  }
  const size_t step = std::max<size_t>(1, (n + 9) / 10);
  for (size_t i = 0; i < n; i += step)
    o << "<text x=\"" << X(i) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\" font-size=\"11\">" << i + 1 << "</text>";
  o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 8 << "\" text-anchor=\"middle\" font-size=\"12\">epoch</text>";
  o << "<line x1=\"" << L << "\" x2=\"" << L << "\" y1=\"" << Tm << "\" y2=\"" << H - B << "\" stroke=\"#333\"/>";
  o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << H - B << "\" y2=\"" << H - B << "\" stroke=\"#333\"/>";
  // series: polylines broken at missing values, a dot per epoch
  double ly = Tm + 8;
  for (const auto& s : series) {
    if (s.v->empty()) continue;
    std::string pts;
    auto flush = [&] {
      if (!pts.empty())
        o << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\"" << (s.dashed ? " stroke-dasharray=\"6 3\"" : "")
          << " points=\"" << pts << "\"/>";
      pts.clear();
    };
    for (size_t i = 0; i < s.v->size(); ++i) {
      const double v = (*s.v)[i];
      if (!std::isfinite(v)) {
        flush();
        continue;
      }
      pts += fmt(X(i), "%.1f") + "," + fmt(Y(v), "%.1f") + " ";
      o << "<circle cx=\"" << fmt(X(i), "%.1f") << "\" cy=\"" << fmt(Y(v), "%.1f") << "\" r=\"2.5\" fill=\"" << s.color
        << "\"><title>" << html_escape(s.name) << " epoch " << i + 1 << ": " << fmt(v) << "</title></circle>";
    }
    flush();
    o << "<line x1=\"" << W - R - 130 << "\" x2=\"" << W - R - 105 << "\" y1=\"" << ly << "\" y2=\"" << ly << "\" stroke=\"" << s.color
      << "\" stroke-width=\"2\"" << (s.dashed ? " stroke-dasharray=\"6 3\"" : "") << "/>";
    o << "<text x=\"" << W - R - 100 << "\" y=\"" << ly + 4 << "\" font-size=\"12\">" << html_escape(s.name) << "</text>";
    ly += 16;
  }
  o << "</svg>";
  return o.str();
}

// The confusion matrix as an SVG heat map (cells shaded by the row-normalised rate, counts printed).
inline std::string confusion_svg(const tinycnn::train::ConfusionMatrix& cm, const std::vector<std::string>& names) {
  const int K = static_cast<int>(cm.num_classes());
  const double cell = K <= 8 ? 56 : std::max(18.0, 448.0 / K), L = 120, Tm = 110;
  const double W = L + cell * K + 20, H = Tm + cell * K + 40;
  auto name = [&](int k) { return k < static_cast<int>(names.size()) ? names[static_cast<size_t>(k)] : std::to_string(k); };
  std::ostringstream o;
  o << "<svg class=\"heatmap\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
    << ' ' << H << "\" role=\"img\" aria-label=\"confusion matrix\">";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>";
  o << "<text x=\"" << L + cell * K / 2 << "\" y=\"14\" text-anchor=\"middle\" font-size=\"12\">predicted</text>";
  o << "<text transform=\"translate(14," << Tm + cell * K / 2 << ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">true</text>";
  for (int k = 0; k < K; ++k) {
    o << "<text transform=\"translate(" << L + cell * (k + 0.5) << "," << Tm - 6 << ") rotate(-45)\" font-size=\"11\">"
      << html_escape(name(k)) << "</text>";
    o << "<text x=\"" << L - 6 << "\" y=\"" << Tm + cell * (k + 0.5) + 4 << "\" text-anchor=\"end\" font-size=\"11\">"
      << html_escape(name(k)) << "</text>";
  }
  for (int t = 0; t < K; ++t) {
    int64_t row = 0;
    for (int p = 0; p < K; ++p) row += cm.at(t, p);
    for (int p = 0; p < K; ++p) {
      const int64_t c = cm.at(t, p);
      const double v = row > 0 ? double(c) / double(row) : 0.0;
      // white -> dark blue
      const int r = static_cast<int>(std::lround(255 - v * (255 - 8))), g = static_cast<int>(std::lround(255 - v * (255 - 48))),
                b = static_cast<int>(std::lround(255 - v * (255 - 107)));
      o << "<rect x=\"" << L + cell * p << "\" y=\"" << Tm + cell * t << "\" width=\"" << cell << "\" height=\"" << cell
        << "\" fill=\"rgb(" << r << ',' << g << ',' << b << ")\" stroke=\"#ccc\"><title>true " << html_escape(name(t))
        << ", predicted " << html_escape(name(p)) << ": " << c << " (" << fmt(100 * v, "%.1f") << "%)</title></rect>";
      if (cell >= 24)
        o << "<text x=\"" << L + cell * (p + 0.5) << "\" y=\"" << Tm + cell * (t + 0.5) + 4 << "\" text-anchor=\"middle\" font-size=\"12\" fill=\""
          << (v > 0.5 ? "#fff" : "#111") << "\">" << c << "</text>";
    }
  }
  o << "</svg>";
  return o.str();
}

}  // namespace detail

// The page as a string (write_report writes it).
inline std::string render_report(const ReportData& r) {
  using detail::fmt;
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    << "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n"
    << "<title>" << html_escape(r.title) << "</title>\n<style>\n"
    << "body{font-family:sans-serif;margin:24px;color:#222;background:#fafafa}h1{font-size:22px}"
    << "h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}"
    << "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
    << "th:first-child,td:first-child,#config td{text-align:left}pre{background:#fff;border:1px solid #ddd;padding:10px;overflow-x:auto;font-size:12px}"
    << ".charts svg{margin-right:16px;border:1px solid #ddd}.grid{display:flex;flex-wrap:wrap;gap:14px}"
    << "figure{margin:0;background:#fff;border:1px solid #ddd;padding:8px}figure img{width:150px;height:150px;object-fit:contain;image-rendering:auto}"
    << "figcaption{font-size:12px;max-width:308px}.muted{color:#888}\n</style>\n</head>\n<body>\n";
  o << "<h1>" << html_escape(r.title) << "</h1>\n";

  o << "<section id=\"curves\">\n<h2>Training curves</h2>\n<div class=\"charts\">";
  o << detail::line_chart("Loss", {{"training", "#1f77b4", &r.loss, false}, {"validation", "#d62728", &r.val_loss, true}}, false);
  o << detail::line_chart("Accuracy", {{"training", "#1f77b4", &r.accuracy, false}, {"validation", "#d62728", &r.val_accuracy, true}}, true);
  o << "</div>\n</section>\n";

  o << "<section id=\"confusion\">\n<h2>Confusion matrix</h2>\n";
  if (r.confusion.num_classes() > 0)
    o << "<p class=\"muted\">Rows: true class; columns: predicted class; shade: share of the row.</p>"
      << detail::confusion_svg(r.confusion, r.class_names);
  else
    o << "<p class=\"muted\">No confusion matrix for this run.</p>";
  o << "\n</section>\n";

  const tinycnn::train::ClassificationReport m =
      r.metrics.precision.empty() && r.confusion.num_classes() > 0 ? r.confusion.report() : r.metrics;
  o << "<section id=\"per-class\">\n<h2>Per-class precision, recall and F1</h2>\n";
  if (m.precision.empty()) {
    o << "<p class=\"muted\">No per-class metrics for this run.</p>";
  } else {
    o << "<table><thead><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr></thead><tbody>";
    for (size_t k = 0; k < m.precision.size(); ++k) {
      const std::string n = k < r.class_names.size() ? r.class_names[k] : std::to_string(k);
      o << "<tr><td>" << html_escape(n) << "</td><td>" << fmt(m.precision[k], "%.4f") << "</td><td>" << fmt(m.recall[k], "%.4f")
        << "</td><td>" << fmt(m.f1[k], "%.4f") << "</td><td>" << (k < m.support.size() ? m.support[k] : 0) << "</td></tr>";
    }
    o << "<tr><th>macro avg</th><td>" << fmt(m.macro_precision, "%.4f") << "</td><td>" << fmt(m.macro_recall, "%.4f") << "</td><td>"
      << fmt(m.macro_f1, "%.4f") << "</td><td></td></tr>";
    o << "<tr><th>weighted avg</th><td>" << fmt(m.weighted_precision, "%.4f") << "</td><td>" << fmt(m.weighted_recall, "%.4f")
      << "</td><td>" << fmt(m.weighted_f1, "%.4f") << "</td><td></td></tr>";
    o << "</tbody></table>\n<p>accuracy: " << fmt(m.accuracy, "%.4f") << "</p>";
  }
  o << "\n</section>\n";

  o << "<section id=\"misclassified\">\n<h2>Misclassified validation images</h2>\n";
  if (r.misclassified.empty()) {
    o << "<p class=\"muted\">None.</p>";
  } else {
    o << "<p class=\"muted\">Left: the image as the model saw it; right: Grad-CAM of the predicted class "
         "(red = the regions that raised its score most).</p>\n<div class=\"grid\">\n";
    for (const Misclassified& mc : r.misclassified) {
      o << "<figure>";
      if (!mc.image.empty()) o << "<img alt=\"image\" src=\"" << png_data_uri(mc.image) << "\">";
      if (!mc.overlay.empty()) o << "<img alt=\"Grad-CAM\" src=\"" << png_data_uri(mc.overlay) << "\">";
      o << "<figcaption>True: " << html_escape(mc.true_label) << " / Predicted: " << html_escape(mc.predicted_label) << " ("
        << fmt(mc.probability, "%.3f") << ")";
      if (!mc.name.empty()) o << "<br><span class=\"muted\">" << html_escape(mc.name) << "</span>";
      o << "</figcaption></figure>\n";
    }
    o << "</div>";
  }
  o << "\n</section>\n";

  o << "<section id=\"model\">\n<h2>Model summary</h2>\n<pre>" << html_escape(r.model_summary) << "</pre>\n</section>\n";
  o << "<section id=\"config\">\n<h2>Configuration</h2>\n<table><tbody>";
  for (const auto& kv : r.config) o << "<tr><td>" << html_escape(kv.first) << "</td><td>" << html_escape(kv.second) << "</td></tr>";
  o << "</tbody></table>\n</section>\n</body>\n</html>\n";
  return o.str();
}

// Writes report.html atomically (a temporary file beside it, then rename).
inline void write_report(const std::string& path, const ReportData& r) {
  const std::string html = render_report(r);
  write_file_atomic(path, html.data(), html.size());
}

}  // namespace intel_scenes
