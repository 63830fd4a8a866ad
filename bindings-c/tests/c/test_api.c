/* Tests of liboai's C API: every function, its error paths included. Built by
 * bindings-c/tests/c_api.rs against the shared and the static library and run under valgrind.
 * Usage: test_api WORK_DIR   (an empty directory; OAI_IPFS_API set: an IPFS node is used too) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oai.h"

static int failures = 0;
static const char *work;

#define CHECK(cond)                                                               \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
      failures++;                                                                 \
    }                                                                             \
  } while (0)

/* The call returned `want` and the thread's last error says so, with `text` in its message. */
static void expect_error(oai_status got, oai_status want, const char *text, int line) {
  if (got != want) {
    fprintf(stderr, "line %d: got %s, want %s\n", line, oai_status_name(got), oai_status_name(want));
    failures++;
    return;
  }
  if (oai_last_error_code() != want) {
    fprintf(stderr, "line %d: last error code %s\n", line, oai_status_name(oai_last_error_code()));
    failures++;
  }
  char *msg = oai_last_error_message();
  if (msg == NULL || strstr(msg, text) == NULL) {
    fprintf(stderr, "line %d: message %s lacks \"%s\"\n", line, msg ? msg : "(null)", text);
    failures++;
  }
  oai_string_free(msg);
}
#define EXPECT_ERROR(call, want, text) expect_error((call), (want), (text), __LINE__)
#define OK(call) expect_ok((call), #call, __LINE__)

static void expect_ok(oai_status got, const char *what, int line) {
  if (got != OAI_OK) {
    char *msg = oai_last_error_message();
    fprintf(stderr, "line %d: %s -> %s: %s\n", line, what, oai_status_name(got), msg ? msg : "");
    oai_string_free(msg);
    failures++;
  }
}

static char *path_in(const char *name) {
  size_t n = strlen(work) + strlen(name) + 2;
  char *p = malloc(n);
  snprintf(p, n, "%s/%s", work, name);
  return p;
}

static void write_file(const char *path, const char *bytes, size_t len) {
  FILE *f = fopen(path, "wb");
  fwrite(bytes, 1, len, f);
  fclose(f);
}

static void test_info(void) {
  CHECK(strcmp(oai_version(), "0.1.0") == 0);
  char *class = NULL;
  OK(oai_compute_class(&class));
  CHECK(class != NULL && strlen(class) > 0);
  oai_string_free(class);
  EXPECT_ERROR(oai_compute_class(NULL), OAI_ERROR_NULL, "class_out is NULL");
  CHECK(strcmp(oai_status_name(OAI_ERROR_NOT_FOUND), "OAI_ERROR_NOT_FOUND") == 0);
  CHECK(strcmp(oai_status_name(999), "OAI_UNKNOWN_STATUS") == 0);
  oai_string_free(NULL);
  oai_bytes_free(NULL, 0);
}

static void test_files(oai_store *store) {
  const char hello[] = "hello from C\n";
  char *cid = NULL, *cid2 = NULL;
  OK(oai_store_add(store, (const uint8_t *)hello, strlen(hello), &cid));
  CHECK(cid != NULL && strncmp(cid, "bafk", 4) == 0); /* one raw leaf, CIDv1 */
  char *path = path_in("hello.txt");
  write_file(path, hello, strlen(hello));
  OK(oai_store_add_file(store, path, &cid2));
  CHECK(cid2 != NULL && strcmp(cid, cid2) == 0);
  uint8_t *data = NULL;
  size_t len = 0;
  OK(oai_store_cat(store, cid, &data, &len));
  CHECK(len == strlen(hello) && memcmp(data, hello, len) == 0);
  oai_bytes_free(data, len);

  char *empty = NULL;
  OK(oai_store_add(store, NULL, 0, &empty));
  OK(oai_store_cat(store, empty, &data, &len));
  CHECK(data == NULL && len == 0);
  oai_string_free(empty);

  EXPECT_ERROR(oai_store_add(store, NULL, 3, &empty), OAI_ERROR_NULL, "data is NULL");
  EXPECT_ERROR(oai_store_add(store, (const uint8_t *)"x", 1, NULL), OAI_ERROR_NULL, "cid_out");
  EXPECT_ERROR(oai_store_cat(store, "not a cid", &data, &len), OAI_ERROR_INVALID_INPUT, "not a cid");
  EXPECT_ERROR(oai_store_cat(store, "bafkreifwqvs46vuze47wuimepm76irzgg5gl23b37xecsut7dwzkaucdie", &data, &len),
               OAI_ERROR_NOT_FOUND, "not found");
  EXPECT_ERROR(oai_store_cat(store, cid, NULL, &len), OAI_ERROR_NULL, "data_out");
  char *missing = path_in("missing.txt");
  EXPECT_ERROR(oai_store_add_file(store, missing, &cid2), OAI_ERROR_NOT_FOUND, "missing.txt");
  free(missing);
  free(path);
  oai_string_free(cid);
  oai_string_free(cid2);
}

static void test_tampered_block(void) {
  char *dir = path_in("tamper-store");
  oai_store *store = NULL;
  OK(oai_store_open(dir, &store));
  char *cid = NULL;
  OK(oai_store_add(store, (const uint8_t *)"precious", 8, &cid));
  /* The filesystem store keeps a block at blocks/<two characters before the last>/<cid>. */
  size_t n = strlen(cid);
  char sub[3] = {cid[n - 3], cid[n - 2], 0};
  size_t plen = strlen(dir) + n + 16;
  char *block = malloc(plen);
  snprintf(block, plen, "%s/blocks/%s/%s", dir, sub, cid);
  FILE *f = fopen(block, "r+b");
  CHECK(f != NULL);
  if (f) {
    fputc('P', f);
    fclose(f);
  }
  uint8_t *data = (uint8_t *)"untouched";
  size_t len = 42;
  EXPECT_ERROR(oai_store_cat(store, cid, &data, &len), OAI_ERROR_INTEGRITY, "corrupt block");
  CHECK(len == 42); /* nothing written on failure */
  OK(oai_store_free(store));
  free(block);
  free(dir);
  oai_string_free(cid);
}

static void test_datasets(oai_store *store) {
  char *lines = path_in("notes.txt");
  write_file(lines, "alpha\nbeta\ngamma\n", 17);
  oai_dataset *notes = NULL, *again = NULL, *by_cid = NULL, *fork = NULL, *grown = NULL;
  OK(oai_dataset_import_lines(store, "notes", lines, &notes));
  uint64_t n = 0;
  OK(oai_dataset_len(notes, &n));
  CHECK(n == 3);
  uint8_t *data = NULL;
  size_t len = 0;
  OK(oai_dataset_record(notes, 1, &data, &len));
  CHECK(len == 4 && memcmp(data, "beta", 4) == 0);
  oai_bytes_free(data, len);
  EXPECT_ERROR(oai_dataset_record(notes, 3, &data, &len), OAI_ERROR_INVALID_INPUT, "out of range");

  char *cid = NULL, *cid2 = NULL, *root = NULL, *root2 = NULL;
  OK(oai_dataset_cid(notes, &cid));
  OK(oai_dataset_open(store, "notes", &again));
  OK(oai_dataset_open(store, cid, &by_cid));
  OK(oai_dataset_cid(by_cid, &cid2));
  CHECK(strcmp(cid, cid2) == 0);
  oai_string_free(cid2);
  EXPECT_ERROR(oai_dataset_open(store, "nothing", &again), OAI_ERROR_NOT_FOUND, "no dataset named \"nothing\"");

  OK(oai_dataset_fork(store, "notes", "notes-fork", &fork));
  EXPECT_ERROR(oai_dataset_fork(store, "notes", "notes-fork", &fork), OAI_ERROR_CONFLICT, "CAS conflict");
  EXPECT_ERROR(oai_dataset_fork(store, "nothing", "x", &fork), OAI_ERROR_NOT_FOUND, "nothing");
  const char *more[] = {"delta", "epsilon"};
  OK(oai_dataset_append_lines(store, "notes-fork", more, 2, &grown));
  OK(oai_dataset_len(grown, &n));
  CHECK(n == 5);
  OK(oai_dataset_len(notes, &n));
  CHECK(n == 3); /* the original is untouched */
  EXPECT_ERROR(oai_dataset_append_lines(store, "notes-fork", NULL, 1, &grown), OAI_ERROR_NULL, "lines");
  const char *with_null[] = {"ok", NULL};
  EXPECT_ERROR(oai_dataset_append_lines(store, "notes-fork", with_null, 2, &grown), OAI_ERROR_NULL, "lines[1]");
  EXPECT_ERROR(oai_dataset_append_lines(store, "nothing", more, 2, &grown), OAI_ERROR_NOT_FOUND, "no dataset named");

  char *diff = NULL;
  OK(oai_dataset_diff(notes, grown, &diff));
  CHECK(diff != NULL && strstr(diff, "\"removed\":[]") != NULL && strstr(diff, "\"added\":[[3,") != NULL);
  oai_string_free(diff);

  char *proof = NULL;
  bool valid = false;
  OK(oai_dataset_prove(notes, 2, &proof));
  OK(oai_dataset_root(notes, &root));
  OK(oai_dataset_root(grown, &root2));
  CHECK(strlen(root) == 64);
  OK(oai_proof_verify(proof, root, &valid));
  CHECK(valid);
  OK(oai_proof_verify(proof, NULL, &valid));
  CHECK(valid);
  OK(oai_proof_verify(proof, root2, &valid)); /* another version's root */
  CHECK(!valid);
  /* A proof for another record: swap in the CID of record 0. */
  char *proof0 = NULL;
  OK(oai_dataset_prove(notes, 0, &proof0));
  char *tampered = strdup(proof);
  memcpy(strstr(tampered, "\"record\":\"") + 10, strstr(proof0, "\"record\":\"") + 10, 59);
  OK(oai_proof_verify(tampered, root, &valid));
  CHECK(!valid);
  free(tampered);
  oai_string_free(proof0);
  EXPECT_ERROR(oai_proof_verify("{not json", root, &valid), OAI_ERROR_INVALID_INPUT, "proof_json");
  EXPECT_ERROR(oai_proof_verify("{}", root, &valid), OAI_ERROR_INVALID_INPUT, "record");
  EXPECT_ERROR(oai_proof_verify(proof, "abc", &valid), OAI_ERROR_INVALID_INPUT, "root");
  EXPECT_ERROR(oai_dataset_prove(notes, 99, &proof0), OAI_ERROR_INVALID_INPUT, "out of range");

  /* Bad input: NULLs, invalid UTF-8, a file that is not UTF-8, a missing file. */
  EXPECT_ERROR(oai_dataset_import_lines(store, NULL, lines, &again), OAI_ERROR_NULL, "name is NULL");
  EXPECT_ERROR(oai_dataset_import_lines(store, "bad\xff", lines, &again), OAI_ERROR_INVALID_UTF8, "name is not UTF-8");
  EXPECT_ERROR(oai_dataset_import_lines(store, "x", lines, NULL), OAI_ERROR_NULL, "out is NULL");
  char *bad = path_in("bad.txt");
  write_file(bad, "fine\n\xfe\xff\n", 8);
  EXPECT_ERROR(oai_dataset_import_lines(store, "bad", bad, &again), OAI_ERROR_INVALID_INPUT, "line 2");
  EXPECT_ERROR(oai_dataset_open(store, "bad", &again), OAI_ERROR_NOT_FOUND, "bad"); /* nothing was made */
  char *missing = path_in("missing.txt");
  EXPECT_ERROR(oai_dataset_import_lines(store, "m", missing, &again), OAI_ERROR_NOT_FOUND, "missing.txt");
  free(missing);
  free(bad);

  /* Handles: the wrong kind, freed ones, double frees. */
  EXPECT_ERROR(oai_dataset_len((oai_dataset *)store, &n), OAI_ERROR_WRONG_HANDLE, "is an oai_store");
  EXPECT_ERROR(oai_dataset_open((oai_store *)notes, "notes", &again), OAI_ERROR_WRONG_HANDLE, "not an oai_store");
  EXPECT_ERROR(oai_store_free((oai_store *)notes), OAI_ERROR_WRONG_HANDLE, "oai_dataset");
  EXPECT_ERROR(oai_dataset_len(NULL, &n), OAI_ERROR_NULL, "dataset is NULL");
  EXPECT_ERROR(oai_dataset_len((oai_dataset *)(uintptr_t)0x1234560, &n), OAI_ERROR_WRONG_HANDLE, "not a live handle");
  OK(oai_dataset_free(by_cid));
  EXPECT_ERROR(oai_dataset_len(by_cid, &n), OAI_ERROR_WRONG_HANDLE, "not a live handle");
  EXPECT_ERROR(oai_dataset_free(by_cid), OAI_ERROR_WRONG_HANDLE, "not a live handle");
  OK(oai_dataset_free(NULL));

  OK(oai_dataset_free(notes));
  OK(oai_dataset_free(again));
  OK(oai_dataset_free(fork));
  OK(oai_dataset_free(grown));
  oai_string_free(proof);
  oai_string_free(root);
  oai_string_free(root2);
  oai_string_free(cid);
  free(lines);
}

/* A dataset outlives its store handle; each thread has its own last error. */
struct worker {
  oai_store *store;
  const char *name;
  oai_status status;
  oai_status last_code;
};

static void *import_in_thread(void *arg) {
  struct worker *w = arg;
  char *lines = path_in("notes.txt");
  oai_dataset *ds = NULL;
  w->status = oai_dataset_import_lines(w->store, w->name, lines, &ds);
  w->last_code = oai_last_error_code();
  oai_dataset_free(ds);
  free(lines);
  return NULL;
}

static void test_threads(void) {
  oai_store *store = NULL;
  char *dir = path_in("thread-store");
  OK(oai_store_open(dir, &store));
  EXPECT_ERROR(oai_dataset_open(store, "nothing", NULL), OAI_ERROR_NULL, "out");
  struct worker ws[4] = {{store, "t0", 0, 0}, {store, "t1", 0, 0}, {store, "t2", 0, 0}, {store, "t3", 0, 0}};
  pthread_t ts[4];
  for (int i = 0; i < 4; i++) pthread_create(&ts[i], NULL, import_in_thread, &ws[i]);
  for (int i = 0; i < 4; i++) pthread_join(ts[i], NULL);
  for (int i = 0; i < 4; i++) {
    CHECK(ws[i].status == OAI_OK);
    CHECK(ws[i].last_code == OAI_OK); /* this thread's failure is not theirs */
  }
  CHECK(oai_last_error_code() == OAI_ERROR_NULL);
  oai_dataset *t2 = NULL;
  OK(oai_dataset_open(store, "t2", &t2));
  OK(oai_store_free(store));
  uint64_t n = 0;
  OK(oai_dataset_len(t2, &n));
  CHECK(n == 3);
  uint8_t *data = NULL;
  size_t len = 0;
  OK(oai_dataset_record(t2, 0, &data, &len)); /* reads blocks through the freed store handle's store */
  CHECK(len == 5 && memcmp(data, "alpha", 5) == 0);
  oai_bytes_free(data, len);
  OK(oai_dataset_free(t2));
  free(dir);
}

static void test_ipfs(void) {
  oai_store *store = NULL;
  /* Nothing listens on port 9 of localhost: a clear error, and nothing is made. */
  OK(oai_store_ipfs("http://127.0.0.1:9", NULL, &store));
  char *cid = NULL;
  EXPECT_ERROR(oai_store_add(store, (const uint8_t *)"x", 1, &cid), OAI_ERROR_UNAVAILABLE, "unreachable");
  CHECK(cid == NULL);
  OK(oai_store_free(store));
  EXPECT_ERROR(oai_store_ipfs("not a url", NULL, &store), OAI_ERROR_INVALID_INPUT, "not a url");
  const char *url = getenv("OAI_IPFS_API");
  if (url == NULL || *url == 0) {
    printf("skipping the real IPFS node: OAI_IPFS_API is not set\n");
    return;
  }
  char *refs = path_in("ipfs-refs");
  OK(oai_store_ipfs(url, refs, &store));
  OK(oai_store_add(store, (const uint8_t *)"through IPFS\n", 13, &cid));
  uint8_t *data = NULL;
  size_t len = 0;
  OK(oai_store_cat(store, cid, &data, &len));
  CHECK(len == 13 && memcmp(data, "through IPFS\n", 13) == 0);
  oai_bytes_free(data, len);
  oai_string_free(cid);
  OK(oai_store_free(store));
  free(refs);
}


/* Points in three classes, a line each: four features and the class. */
static void write_points(const char *path, int n) {
  FILE *f = fopen(path, "w");
  for (int i = 0; i < n; i++) {
    int c = i % 3;
    fprintf(f, "%.3f,%.3f,%.3f,%.3f,%d\n", c + (i % 7) / 7.0, (i % 5) / 5.0 - c, (i % 3) / 3.0, c * 0.5, c);
  }
  fclose(f);
}

static const char *SPEC =
    "{\"dataset\": \"%s\", \"model\": {\"mlp\": {\"input\": 4, \"hidden\": [16], \"classes\": 3, "
    "\"dropout\": 0.1}}, \"optimizer\": {\"adam_w\": {\"beta1\": 0.9, \"beta2\": 0.999, \"eps\": 1e-8, "
    "\"weight_decay\": 0.0001}}, \"schedule\": {\"warmup_cosine\": {\"lr\": 0.01, \"warmup\": 2, "
    "\"decay_steps\": 6, \"min_lr\": 0.001}}, \"batch_size\": 8, \"steps\": 6, \"checkpoint_every\": 2, "
    "\"grad_clip\": 1.0, \"seed\": 7, \"kernels\": \"verifiable\", \"compute_class\": null}";

static void count_step(uint64_t step, float loss, void *user) {
  uint64_t *seen = user;
  if (step == *seen && loss > 0) (*seen)++;
}

static void test_training(void) {
  char *dir = path_in("train-store");
  oai_store *store = NULL;
  OK(oai_store_open(dir, &store));
  char *csv = path_in("points.csv");
  write_points(csv, 60);
  oai_dataset *points = NULL;
  OK(oai_dataset_import_csv(store, "points", csv, 1.0f, &points));
  uint64_t n = 0;
  OK(oai_dataset_len(points, &n));
  CHECK(n == 60);
  uint8_t *data = NULL;
  size_t len = 0;
  EXPECT_ERROR(oai_dataset_record(points, 0, &data, &len), OAI_ERROR_INVALID_INPUT, "tensor");
  char *bad = path_in("bad.csv");
  write_file(bad, "1,2,x\n", 6);
  oai_dataset *nope = NULL;
  EXPECT_ERROR(oai_dataset_import_csv(store, "bad", bad, 1.0f, &nope), OAI_ERROR_INVALID_INPUT, "line 1");
  free(bad);

  char *cid = NULL;
  OK(oai_dataset_cid(points, &cid));
  char spec[1024];
  snprintf(spec, sizeof spec, SPEC, cid);
  uint64_t seen = 0;
  char *log = NULL;
  OK(oai_train(store, spec, "run", count_step, &seen, &log));
  CHECK(seen == 6); /* the callback saw steps 0..5 in order */
  char *again = NULL;
  OK(oai_train(store, spec, NULL, NULL, NULL, &again)); /* deterministic: the same log */
  CHECK(log && again && strcmp(log, again) == 0);
  oai_string_free(again);
  EXPECT_ERROR(oai_train(store, "{", NULL, NULL, NULL, &again), OAI_ERROR_INVALID_INPUT, "spec");
  char unknown[1024];
  snprintf(unknown, sizeof unknown, SPEC, "bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
  EXPECT_ERROR(oai_train(store, unknown, NULL, NULL, NULL, &again), OAI_ERROR_NOT_FOUND, "not found");
  EXPECT_ERROR(oai_train(store, spec, NULL, NULL, NULL, NULL), OAI_ERROR_NULL, "log_cid_out");

  char *info = NULL;
  OK(oai_log_json(store, "run", &info));
  CHECK(info && strstr(info, "\"steps\":6") && strstr(info, log) && strstr(info, "\"losses\":["));
  oai_string_free(info);
  OK(oai_log_json(store, log, &info));
  oai_string_free(info);
  EXPECT_ERROR(oai_log_json(store, "nope", &info), OAI_ERROR_NOT_FOUND, "no run named \"nope\"");

  bool matches = false;
  char *outcome = NULL;
  OK(oai_replay_step(store, "run", 3, &matches, &outcome));
  CHECK(matches && outcome && strstr(outcome, "\"match\":true"));
  oai_string_free(outcome);
  matches = false;
  OK(oai_replay_step(store, log, 0, &matches, NULL));
  CHECK(matches);
  EXPECT_ERROR(oai_replay_step(store, "run", 6, &matches, NULL), OAI_ERROR_INVALID_INPUT, "out of range");

  bool accepted = false;
  char *verdict = NULL;
  OK(oai_verify_log(store, "run", "{\"strategy\": \"full\"}", 0, 2, &accepted, &verdict));
  CHECK(accepted && verdict && strstr(verdict, "\"Accepted\"") && strstr(verdict, "\"replayed_steps\":6"));
  oai_string_free(verdict);
  accepted = false;
  OK(oai_verify_log(store, log, "{\"strategy\": \"sampling\", \"samples\": 2}", 42, 1, &accepted, NULL));
  CHECK(accepted);
  EXPECT_ERROR(oai_verify_log(store, log, "{\"strategy\": \"guess\"}", 0, 1, &accepted, NULL), OAI_ERROR_INVALID_INPUT,
               "strategy_json");
  EXPECT_ERROR(oai_verify_log(store, log, "{\"strategy\": \"full\"}", 0, 0, &accepted, NULL), OAI_ERROR_INVALID_INPUT,
               "parallelism");

  /* A tampered log block: the summary no longer matches its CID. */
  size_t k = strlen(log);
  size_t plen = strlen(dir) + k + 16;
  char *block = malloc(plen);
  snprintf(block, plen, "%s/blocks/%c%c/%s", dir, log[k - 3], log[k - 2], log);
  FILE *f = fopen(block, "r+b");
  CHECK(f != NULL);
  if (f) { /* flip one bit of byte 8 */
    fseek(f, 8, SEEK_SET);
    int byte = fgetc(f);
    fseek(f, 8, SEEK_SET);
    fputc(byte ^ 1, f);
    fclose(f);
  }
  EXPECT_ERROR(oai_log_json(store, log, &info), OAI_ERROR_INTEGRITY, "corrupt block");
  EXPECT_ERROR(oai_replay_step(store, log, 1, &matches, NULL), OAI_ERROR_INTEGRITY, "corrupt block");
  EXPECT_ERROR(oai_verify_log(store, log, "{\"strategy\": \"full\"}", 0, 1, &accepted, NULL), OAI_ERROR_INTEGRITY,
               "corrupt block");
  free(block);

  oai_string_free(log);
  oai_string_free(cid);
  OK(oai_dataset_free(points));
  OK(oai_store_free(store));
  free(csv);
  free(dir);
}

static void test_retrieval(void) {
  char *dir = path_in("rag-store");
  oai_store *store = NULL;
  OK(oai_store_open(dir, &store));
  char *lines = path_in("passages.txt");
  const char *text = "the cat sat on the mat\nstocks fell sharply on monday\nrain is expected tomorrow\n";
  write_file(lines, text, strlen(text));
  oai_dataset *passages = NULL;
  OK(oai_dataset_import_lines(store, "passages", lines, &passages));

  oai_embedder *words = NULL;
  OK(oai_embedder_hashed(256, &words));
  size_t dim = 0;
  OK(oai_embedder_dim(words, &dim));
  CHECK(dim == 256);
  EXPECT_ERROR(oai_embedder_hashed(4, &words), OAI_ERROR_INVALID_INPUT, "16");
  float v[256];
  OK(oai_embed(words, "the cat sat on the mat", v, 256));
  float norm = 0;
  for (int i = 0; i < 256; i++) norm += v[i] * v[i];
  CHECK(norm > 0.99f && norm < 1.01f); /* L2-normalised */
  EXPECT_ERROR(oai_embed(words, "x", v, 32), OAI_ERROR_INVALID_INPUT, "256");
  EXPECT_ERROR(oai_embed(words, "x", NULL, 256), OAI_ERROR_NULL, "vector");

  /* A passage's own text finds it first (score 1), in both indexes. */
  char *proof = NULL;
  OK(oai_dataset_prove(passages, 0, &proof));
  char cat[64] = {0};
  memcpy(cat, strstr(proof, "\"record\":\"") + 10, 59);
  oai_string_free(proof);
  oai_index *indexes[2] = {NULL, NULL};
  OK(oai_index_flat(256, &indexes[0]));
  OK(oai_index_hnsw(256, &indexes[1]));
  for (int i = 0; i < 2; i++) {
    size_t embedded = 0, len = 0;
    OK(oai_ingest(store, "passages", words, indexes[i], &embedded));
    CHECK(embedded == 3);
    OK(oai_ingest(store, "passages", words, indexes[i], &embedded));
    CHECK(embedded == 0); /* already there */
    OK(oai_index_len(indexes[i], &len));
    CHECK(len == 3);
    char *hits = NULL;
    OK(oai_search(indexes[i], v, 256, 2, &hits));
    int cat_first = hits && strncmp(hits, "[{", 2) == 0 && strstr(hits, cat) == strstr(hits, "\"source\":\"") + 10 && strstr(hits, "\"score\":1");
    if (!cat_first) fprintf(stderr, "hits %s, the cat passage %s\n", hits, cat);
    CHECK(cat_first);
    oai_string_free(hits);
    EXPECT_ERROR(oai_search(indexes[i], v, 255, 2, &hits), OAI_ERROR_INVALID_INPUT, "256");
    EXPECT_ERROR(oai_search(indexes[i], v, 256, 0, &hits), OAI_ERROR_INVALID_INPUT, "k must");
    EXPECT_ERROR(oai_search(indexes[i], NULL, 256, 2, &hits), OAI_ERROR_NULL, "query");
  }
  oai_index *small = NULL;
  OK(oai_index_flat(32, &small));
  EXPECT_ERROR(oai_ingest(store, "passages", words, small, NULL), OAI_ERROR_INVALID_INPUT, "holds 32");
  EXPECT_ERROR(oai_ingest(store, "nothing", words, indexes[0], NULL), OAI_ERROR_NOT_FOUND, "nothing");
  EXPECT_ERROR(oai_ingest(store, "passages", (oai_embedder *)indexes[0], indexes[0], NULL), OAI_ERROR_WRONG_HANDLE,
               "is an oai_index");
  EXPECT_ERROR(oai_index_flat(0, &small), OAI_ERROR_INVALID_INPUT, "dim");

  /* A named index (indexes/NAME, as `oai rag ingest` makes one) opens by name, with the
     embedder it was made with only. */
  size_t embedded = 0, len = 0;
  OK(oai_ingest_index(store, "notes", "passages", words, &embedded));
  CHECK(embedded == 3);
  OK(oai_ingest_index(store, "notes", "passages", words, &embedded));
  CHECK(embedded == 0);
  oai_index *named = NULL;
  OK(oai_index_open(store, "notes", words, &named));
  OK(oai_index_len(named, &len));
  CHECK(len == 3);
  char *named_hits = NULL;
  OK(oai_search(named, v, 256, 1, &named_hits));
  CHECK(strstr(named_hits, cat) != NULL);
  oai_string_free(named_hits);
  OK(oai_index_free(named));
  oai_embedder *other = NULL;
  OK(oai_embedder_hashed(128, &other));
  EXPECT_ERROR(oai_index_open(store, "notes", other, &named), OAI_ERROR_INVALID_INPUT,
               "embedded with hashed-words-256, not hashed-words-128");
  EXPECT_ERROR(oai_ingest_index(store, "notes", "passages", other, NULL), OAI_ERROR_INVALID_INPUT,
               "hashed-words-128");
  OK(oai_embedder_free(other));
  EXPECT_ERROR(oai_index_open(store, "nothing", words, &named), OAI_ERROR_NOT_FOUND, "no index named");
  EXPECT_ERROR(oai_index_open(store, NULL, words, &named), OAI_ERROR_NULL, "name");

  oai_embedder *minilm = NULL;
  char *missing = path_in("no-model");
  EXPECT_ERROR(oai_embedder_minilm(missing, &minilm), OAI_ERROR_NOT_FOUND, "no-model");
  free(missing);
  const char *model = getenv("OAI_MINILM");
  if (model && *model) {
    OK(oai_embedder_minilm(model, &minilm));
    OK(oai_embedder_dim(minilm, &dim));
    CHECK(dim == 384);
    float m[384];
    OK(oai_embed(minilm, "open data, checked", m, 384));
    OK(oai_embedder_free(minilm));
  } else {
    printf("skipping all-MiniLM-L6-v2: OAI_MINILM is not set\n");
  }

  OK(oai_index_free(small));
  OK(oai_index_free(indexes[0]));
  OK(oai_index_free(indexes[1]));
  OK(oai_embedder_free(words));
  OK(oai_dataset_free(passages));
  OK(oai_store_free(store));
  free(lines);
  free(dir);
}

/* Appends each piece of an answer to the buffer `user` points at. */
static int collect(const char *piece, void *user) {
  char *answer = user;
  strncat(answer, piece, 255 - strlen(answer));
  return 0;
}

static void test_generation(void) {
  oai_model *model = NULL;
  char *missing = path_in("no-model.gguf");
  EXPECT_ERROR(oai_model_open(missing, &model), OAI_ERROR_NOT_FOUND, "no-model.gguf");
  free(missing);
  char *notes = path_in("not-a-model.gguf");
  FILE *f = fopen(notes, "w");
  fputs("not a model", f);
  fclose(f);
  EXPECT_ERROR(oai_model_open(notes, &model), OAI_ERROR_INVALID_INPUT, "gguf");
  free(notes);
  CHECK(model == NULL);
  const char *path = getenv("OAI_SMOLLM2");
  if (!path || !*path) {
    printf("skipping SmolLM2: OAI_SMOLLM2 is not set\n");
    return;
  }
  OK(oai_model_open(path, &model));
  char streamed[256] = "";
  char *answer = NULL;
  OK(oai_generate(model, "The capital of France is", 3, 0.0, 0, 0, collect, streamed, &answer));
  CHECK(answer && strstr(answer, "Paris"));
  CHECK(answer && strcmp(answer, streamed) == 0);
  oai_string_free(answer);
  EXPECT_ERROR(oai_generate(model, "hi", (size_t)1 << 40, 0.0, 0, 0, NULL, NULL, NULL),
               OAI_ERROR_INVALID_INPUT, "context");
  OK(oai_model_free(model));
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
    return 2;
  }
  work = argv[1];
  CHECK(oai_last_error_code() == OAI_OK);
  CHECK(oai_last_error_message() == NULL);
  test_info();

  oai_store *mem = NULL, *fs = NULL;
  size_t live = 99;
  OK(oai_live_handles(&live));
  CHECK(live == 0);
  EXPECT_ERROR(oai_store_memory(NULL), OAI_ERROR_NULL, "out is NULL");
  EXPECT_ERROR(oai_store_open(NULL, &fs), OAI_ERROR_NULL, "path is NULL");
  OK(oai_store_memory(&mem));
  test_files(mem);
  char *dir = path_in("store");
  OK(oai_store_open(dir, &fs));
  test_files(fs);
  test_datasets(fs);
  test_datasets(mem);
  test_tampered_block();
  test_threads();
  test_training();
  test_retrieval();
  test_generation();
  test_ipfs();
  OK(oai_store_free(mem));
  OK(oai_store_free(fs));
  EXPECT_ERROR(oai_store_free(fs), OAI_ERROR_WRONG_HANDLE, "not a live handle");
  OK(oai_store_free(NULL));
  free(dir);
  live = 99;
  OK(oai_live_handles(&live));
  CHECK(live == 0); /* every handle made here was freed */
  EXPECT_ERROR(oai_live_handles(NULL), OAI_ERROR_NULL, "count_out");
  if (failures) {
    fprintf(stderr, "%d checks failed\n", failures);
    return 1;
  }
  printf("all C API checks passed\n");
  return 0;
}
