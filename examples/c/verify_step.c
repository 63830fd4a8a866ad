/* Import a dataset, train a few logged steps, replay one of them and verify the run, from C.
 *
 *   cargo build -p oai-c && export PKG_CONFIG_PATH=$PWD/target/debug/pkgconfig
 *   cc examples/c/verify_step.c $(pkg-config --cflags --libs oai) -o verify_step
 *   ./verify_step /tmp/verify-step-store
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oai.h"

/* Print what went wrong on this thread and exit. */
static void check(oai_status status, const char *what) {
  if (status == OAI_OK) return;
  char *why = oai_last_error_message();
  fprintf(stderr, "%s: %s: %s\n", what, oai_status_name(status), why ? why : "");
  oai_string_free(why);
  exit(1);
}

static void on_step(uint64_t step, float loss, void *user) {
  (void)user;
  printf("  step %llu  loss %.4f\n", (unsigned long long)step, loss);
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "verify-step-store";
  printf("liboai %s on %s\n", oai_version(), dir);

  oai_store *store = NULL;
  check(oai_store_open(dir, &store), "open the store"); /* made if missing */

  /* 90 points in three classes: four features and the class, one CSV line each. */
  char csv[4096];
  snprintf(csv, sizeof csv, "%s/points.csv", dir);
  FILE *f = fopen(csv, "w");
  if (!f) { perror(csv); return 1; }
  for (int i = 0; i < 90; i++) {
    int c = i % 3;
    fprintf(f, "%.3f,%.3f,%.3f,%.3f,%d\n", c + (i % 7) / 7.0, (i % 5) / 5.0 - c, (i % 3) / 3.0, c * 0.5, c);
  }
  fclose(f);

  oai_dataset *points = NULL;
  check(oai_dataset_import_csv(store, "points", csv, 1.0f, &points), "import the points");
  char *dataset = NULL;
  uint64_t records = 0;
  check(oai_dataset_cid(points, &dataset), "dataset CID");
  check(oai_dataset_len(points, &records), "dataset length");
  printf("dataset points: %llu records, version %s\n", (unsigned long long)records, dataset);

  /* A small MLP job: 8 steps, a checkpoint every 4, every step logged. */
  char spec[2048];
  snprintf(spec, sizeof spec,
           "{\"dataset\": \"%s\", \"model\": {\"mlp\": {\"input\": 4, \"hidden\": [32], \"classes\": 3, "
           "\"dropout\": 0.1}}, \"optimizer\": {\"adam_w\": {\"beta1\": 0.9, \"beta2\": 0.999, "
           "\"eps\": 1e-8, \"weight_decay\": 0.0001}}, \"schedule\": {\"warmup_cosine\": {\"lr\": 0.01, "
           "\"warmup\": 2, \"decay_steps\": 8, \"min_lr\": 0.001}}, \"batch_size\": 16, \"steps\": 8, "
           "\"checkpoint_every\": 4, \"grad_clip\": 1.0, \"seed\": 1, \"kernels\": \"verifiable\", "
           "\"compute_class\": null}",
           dataset);
  char *log = NULL;
  printf("training:\n");
  check(oai_train(store, spec, "points-mlp", on_step, NULL, &log), "train");
  printf("log %s (run points-mlp)\n", log);

  /* Anyone holding the store can re-execute a step and compare every bit with the log. */
  bool matches = false;
  char *outcome = NULL;
  check(oai_replay_step(store, "points-mlp", 5, &matches, &outcome), "replay step 5");
  printf("replay of step 5: %s\n  %s\n", matches ? "the logged bits" : "DIFFERENT", outcome);

  /* Or audit the whole run: 3 steps drawn from a seed, each replayed from its checkpoint. */
  bool accepted = false;
  char *verdict = NULL;
  check(oai_verify_log(store, log, "{\"strategy\": \"sampling\", \"samples\": 3}", 2026, 1, &accepted, &verdict),
        "verify the run");
  printf("sampled audit: %s\n  %s\n", accepted ? "accepted" : "REJECTED", verdict);

  oai_string_free(verdict);
  oai_string_free(outcome);
  oai_string_free(log);
  oai_string_free(dataset);
  check(oai_dataset_free(points), "free the dataset");
  check(oai_store_free(store), "free the store");
  return matches && accepted ? 0 : 1;
}
