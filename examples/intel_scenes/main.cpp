// intel_scenes: the scene classifiers of the original studies (buildings, forest, glacier, mountain,
// sea, street), their training, evaluation and prediction, and a photo archiver. See
// docs/intel_scenes.md. With no arguments it runs the demo on the shipped sample.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <vector>

#include "cmd_bench.hpp"
#include "cmd_demo.hpp"
#include "cmd_evaluate.hpp"
#include "cmd_predict.hpp"
#include "cmd_sort.hpp"
#include "cmd_train.hpp"
#include "cmd_ensemble.hpp"
#include "common.hpp"
#include "models.hpp"

int main(int argc, char** argv) {
  using namespace intel_scenes;
  CLI::App app{"intel_scenes: scene-photo classifiers (train, evaluate, predict, sort into folders).\n"
               "With no arguments: the demo (evaluate the shipped model on the shipped sample and sort it)."};
  app.require_subcommand(0, 1);

  std::string summary_model = "model2";
  auto* summary = app.add_subcommand("summary", "print a model's layers and parameter counts");
  summary->add_option("--model", summary_model, "model name: " + model_names_list())->required();

  TrainArgs ta;
  auto* train = app.add_subcommand("train", "train a model on an image folder (DIR/<class>/*.jpg)");
  train->add_option("--data", ta.data, "training folder, one subfolder per class")->required();
  auto* vs = train->add_option("--val-split", ta.val_split, "stratified validation fraction (default 0.15)");
  auto* vd = train->add_option("--val", ta.val_dir, "separate validation folder (same class subfolders)");
  vs->excludes(vd);
  auto* tm = train->add_option("--model", ta.model, "model name: " + model_names_list());
  auto* ti = train->add_option("--init", ta.init,
                               "start from this model file (architecture, weights, trainable flags): fine-tuning");
  tm->excludes(ti);
  train->add_option("--trainable-from", ta.trainable_from,
                    "freeze every layer before this one (a layer name from summary, or 'all')");
  train->add_option("--bn-momentum", ta.bn_momentum,
                    "moving-average momentum of every batch norm layer, Keras' convention (model004: 0.99 as Keras; "
                    "0.9 = PyTorch's default)");
  train->add_flag("--bn-recalibrate", ta.bn_recalibrate,
                  "after training, re-estimate the best model's batch norm statistics on the unaugmented training "
                  "images (kept if validation accuracy does not drop)");
  train->add_option("--epochs", ta.epochs, "epochs")->required();
  train->add_option("--batch", ta.batch, "batch size (default 32)");
  train->add_option("--lr", ta.lr, "Adam learning rate (default 1e-3)");
  train->add_option("--augment", ta.augment, "keras (flip + zoom 0.8-1.2, default), strong or none");
  train->add_option("--schedule", ta.schedule, "learning rate: constant (default) or cosine (to lr/100)");
  train->add_option("--swa-from", ta.swa_from,
                    "stochastic weight averaging: average the weights at the end of this epoch (1-based) and every "
                    "later one, re-estimate batch norm, keep the average if validation accuracy does not drop");
  train->add_option("--label-smoothing", ta.label_smoothing,
                    "softmax targets (1 - e) * one-hot + e / classes, as Keras' label_smoothing (default 0)");
  train->add_flag("--multi-label", ta.multi_label,
                  "sigmoid/binary cross-entropy; a photo copied into several class folders has all those labels");
  train->add_option("--threads", ta.threads, "compute threads (default: all cores)");
  train->add_option("--seed", ta.seed, "seed for the split, initialisation, shuffling and augmentation (default 0)");
  train->add_option("--split-seed", ta.split_seed,
                    "seed of the validation split alone (default: --seed); train ensemble members with other --seed "
                    "values on one split")
      ->check(CLI::NonNegativeNumber);
  train->add_option("--resume", ta.resume, "continue the interrupted run in RUNDIR");
  train->add_option("--out", ta.out, "RUNDIR: model.safetensors, history.csv, report.html");
  train->add_option("--exclude", ta.exclude_dir, "leave out files whose <class>/<name> is in this folder (e.g. the shipped sample)");
  train->add_option("--input-size", ta.input_size,
                    "input size (square) of resnet/resnet14 (default 64) or mobilenet_transfer (default 224); with --init, "
                    "continue a fully convolutional model at another resolution");
  train->add_option("--max-per-class", ta.max_per_class, "use at most N images per class (quick runs)");
  train->add_option("--workers", ta.workers, "data loader threads (default 2)");
  train->add_option("--device", ta.device, "cpu (default) or cuda (a build with -DTINYCNN_USE_CUDA=ON and a GPU)");

  EvalArgs ea;
  auto* evaluate = app.add_subcommand("evaluate", "accuracy, macro F1 and confusion matrix on a labelled folder");
  evaluate->add_option("--model", ea.model, "model file (default: the shipped pretrained/scenes.safetensors)");
  evaluate->add_option("--data", ea.data, "folder with one subfolder per class")->required();
  evaluate->add_option("--report", ea.report, "also write an HTML report");
  evaluate->add_flag("--tta", ea.tta, "average each prediction with the mirrored image's");
  evaluate->add_option("--threads", ea.threads, "compute threads");
  evaluate->add_option("--val-split", ea.val_split, "evaluate only the validation part of train's stratified split of DIR");
  evaluate->add_option("--seed", ea.seed, "with --val-split: the training run's --seed (default 0)");
  evaluate->add_option("--exclude", ea.exclude, "leave out files whose <class>/<name> is in this folder (as train --exclude)");
  evaluate->add_option("--sampling", ea.sampling, "area (antialiased resize) or warp (as training batches); default: the model file's");

  PredictArgs pa;
  auto* predict = app.add_subcommand("predict", "top classes with probabilities for images (files or folders)");
  predict->add_option("--model", pa.model, "model file (default: the shipped pretrained/scenes.safetensors)");
  predict->add_option("paths", pa.paths, "image files or folders")->required();
  predict->add_option("--top", pa.top, "classes to show per image (default 3)");
  auto* pj = predict->add_flag("--json", pa.json, "JSON output");
  auto* pc = predict->add_flag("--csv", pa.csv, "CSV output");
  pj->excludes(pc);
  predict->add_flag("--tta", pa.tta, "average with the mirrored image");
  predict->add_option("--explain", pa.explain, "write a Grad-CAM overlay PNG per image into this folder");
  predict->add_option("--threads", pa.threads, "compute threads");

  SortArgs sa;
  auto* sort = app.add_subcommand("sort", "archive photos into DEST/<class>/ folders");
  sort->add_option("--model", sa.model, "model file (default: the shipped pretrained/scenes.safetensors)");
  sort->add_option("--src", sa.src, "folder of photos")->required();
  sort->add_option("--dest", sa.dest, "archive root")->required();
  sort->add_option("--threshold", sa.threshold, "probability threshold (default: the model's per-class thresholds, else 0.5)");
  sort->add_flag("--multi-label", sa.multi_label, "a photo goes to every class above its threshold (none: unclassified/)");
  sort->add_flag("--dry-run", sa.dry_run, "report what would happen, change nothing");
  sort->add_flag("--move", sa.move, "move instead of copy (copy, fsync, re-hash, then unlink)");

  BenchArgs ba;
  auto* bench = app.add_subcommand("bench", "training and inference throughput on synthetic input");
  bench->add_option("--model", ba.model, "model name: " + model_names_list())->required();
  bench->add_option("--batch", ba.batch, "batch size (default 32)");
  bench->add_option("--steps", ba.steps, "timed steps (default 5)");
  bench->add_option("--threads", ba.threads, "compute threads");
  bench->add_option("--input-size", ba.input_size, "input size of resnet/resnet14 (default 64)");
  bench->add_option("--device", ba.device, "cpu (default) or cuda (a build with -DTINYCNN_USE_CUDA=ON and a GPU)");
  bench->add_option("--scaling", ba.scaling,
                    "also time N pairs of training steps on 1 and on all threads, alternated, and print the median "
                    "speed-up");

  EnsembleArgs na;
  auto* ens = app.add_subcommand("ensemble", "combine trained model files into one that averages their logits");
  ens->add_option("--models", na.models, "two or more model files (same classes and resize mode)")->required();
  ens->add_option("--out", na.out, "the ensemble's model file")->required();
  ens->add_option("--input-size", na.input_size,
                  "the ensemble's (square) input size when the members' sizes or pixel scalings differ; each member "
                  "resizes and rescales it itself (default: the first member's size; give the photos' own size, e.g. 150)");
  ens->add_option("--drop", na.drop,
                  "leave this member of an ensemble file given in --models out (its name as that file's ensemble_of "
                  "lists it); repeat for more");
  ens->add_flag("--flip", na.flip,
                "test-time flip averaging built into the model: every member also sees the mirrored photo");
  ens->add_option("--zoom", na.zoom,
                  "multi-crop test-time averaging built in: every member also sees the central fraction F of the photo "
                  "(e.g. 0.85), resized to its input; repeat for more views")
      ->check(CLI::Range(0.0, 1.0));

  DemoArgs da;
  auto* demo = app.add_subcommand("demo", "evaluate the shipped model on the shipped sample and sort the sample (the default)");
  demo->add_option("--model", da.model, "model file (default: the shipped pretrained/scenes.safetensors)");
  demo->add_option("--dest", da.dest, "where to sort the sample (default: a fresh temporary folder)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  try {
    if (*summary) {
      if (!is_model_name(summary_model))
        throw UsageError("--model: unknown model '" + summary_model + "' (known: " + model_names_list() + ")");
      auto m = make_model(summary_model, 6, 0);
      std::cout << train::summary(*m, summary_model);
    } else if (*train) {
      run_train(ta, std::cout);
    } else if (*evaluate) {
      run_evaluate(ea, std::cout);
    } else if (*predict) {
      run_predict(pa, std::cout);
    } else if (*sort) {
      return run_sort(sa, std::cout);
    } else if (*bench) {
      run_bench(ba, std::cout);
    } else if (*ens) {
      run_ensemble(na, std::cout);
    } else {
      run_demo(da, std::cout);
    }
  } catch (const UsageError& e) {
    std::cerr << "intel_scenes: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "intel_scenes: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
