// A consistent copy of the document stores of a data folder while a server keeps
// writing to them (`groundmist-sync backup`, cli/backup.h).
//
// Usage:
//   std::vector<gm::storage::CopiedFile> files;
//   GM_ASSIGN_OR_RETURN(auto stats, gm::storage::copy_document_stores(data_dir, out_dir, {}, files));
//
// What is copied: every folder of `data_dir` whose name does not start with '.' (so
// not `.groundmist/`, which the caller copies its own way), and in it every regular
// file whose name does not start with '.' (temp files `.tmp-…`, a store's `.tmp/`,
// half-removed `.removing-…` folders, files hidden as damaged are left behind). A
// store is a folder holding `st/orage-adapter-id` (group_registry.h); in a store,
// `<2 chars>/<rest>/` is a document folder (document_store.h) and is copied as one
// unit, as below. Symbolic links and other special files are skipped and listed.
//
// Why a document is copied consistently (nothing durable before the copy began is
// lost). The server never changes a file once it is renamed into place (names are
// content hashes; a sync-state is replaced by a rename, never written in place), and
// it removes a document's files in one case only: compaction, which first makes a new
// snapshot durable that holds every change of the files it then removes
// (repo/group_repo_work.cc, GroupRepo::compact). Documents are never removed whole.
// Hence, for a change C durable at the time T0 the copy began, at every moment after
// T0 some file present in the document's `incremental/` or `snapshot/` folder holds C,
// and once C is in a snapshot some present *snapshot* holds it from then on (a
// snapshot is only removed after a newer one holding it was written).
//   A pass over a document lists `incremental/` at a moment a, then the document
// folder and its other folders (`snapshot/`, `sync-state/`) at a later moment b, each
// listing atomic (list_folder_atomically), and reads every listed file not copied yet.
// If a listed file is gone when read (compacted away meanwhile), the pass is repeated
// until one pass reads every file it listed; files copied by an earlier pass that the
// last pass did not list are dropped from the copy. In that last pass: if at moment a
// an incremental file held C, it was listed and then read (a file's name fixes its
// content, so one copied by an earlier pass is the same); otherwise a snapshot held C
// at a, so one still held C at b > a and was listed, and read. Listing `incremental/`
// first matters: compaction writes the snapshot before it removes the incrementals,
// so a change missing from the first listing is already in the second.
//   A listing is atomic on Linux when the whole folder comes back from one
// getdents64(2) call: the kernel holds the folder's lock for the call, and creating,
// renaming or removing an entry takes it too. A file system that hands a folder out
// in pieces (some network or FUSE file systems) gets listed until two listings in a
// row agree, which is only a best effort.
//
// Reads of `data_dir` go through options.env (tests inject faults and races); the
// copy is written with plain system calls and not flushed (the caller flushes once).
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "storage/env.h"
#include "util/result.h"
#include "util/sha256.h"

namespace gm::storage {

// One file written to the copy.
struct CopiedFile {
  std::filesystem::path relative;  // to the copy's root
  uint64_t bytes = 0;
  Sha256Digest sha256{};
};

struct StoreCopyOptions {
  // Reads of the source (open, read, stat); null = Env::posix().
  Env* env = nullptr;
  // Lists a folder of the source (as Env::list); empty = list_folder_atomically. Tests
  // use it to change the folder between a listing and the reads that follow.
  std::function<int(const char* dir, std::vector<Env::Entry>& out)> list;
  // A document still changing after this many passes fails the copy (a server writes
  // a few files a second to a document at most; each pass takes milliseconds).
  int max_passes = 1000;
};

struct StoreCopyStats {
  std::vector<std::string> groups;  // NSID names of the stores, sorted
  size_t documents = 0;
  size_t files = 0;
  uint64_t bytes = 0;
  size_t repeated_passes = 0;        // passes repeated because a file went meanwhile
  std::vector<std::string> skipped;  // special files left out (relative paths)
};

// Lists `dir` (without "." and "..") as one atomic snapshot where the file system
// allows (see above). Returns 0, or -1 with errno set.
int list_folder_atomically(const char* dir, std::vector<Env::Entry>& out);

// Copies the stores of `data_dir` into `out_dir` (an existing, empty folder), adding
// every file it writes to `files`.
Result<StoreCopyStats> copy_document_stores(const std::filesystem::path& data_dir, const std::filesystem::path& out_dir,
                                            const StoreCopyOptions& options, std::vector<CopiedFile>& files);

// Creates `dir` and the folders above it that are missing, mode 0700, not flushed.
Status make_private_folders(const std::filesystem::path& dir);

// Writes a new file (O_EXCL) with `mode`, creating its folders (0700), not flushed;
// returns its SHA-256.
Result<Sha256Digest> write_new_file(const std::filesystem::path& path, ByteView bytes, unsigned mode = 0600);

}  // namespace gm::storage
