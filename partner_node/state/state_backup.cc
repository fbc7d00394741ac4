#include "partner_node/state/state_backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/common/files.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "partner_node/egress/egress_ledger.h"
#include "partner_node/egress/privacy_budget.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/gallery/gallery_store_factory.h"
#include "partner_node/serve/serve_config.h"
#include "partner_node/state/sqlite_copy.h"

namespace fedface::partner {
namespace fs = std::filesystem;
namespace {

constexpr char kManifest[] = "manifest.json";
constexpr char kFormat[] = "fedface-partner-state-backup";
constexpr char kLedgerKey[] = "ledger.path";
constexpr char kBudgetKey[] = "egress.budget_path";
constexpr char kGalleryKey[] = "gallery.db";
constexpr char kStateDirKey[] = "evaluation.state_dir";
constexpr char kCacheKey[] = "model_cache.dir";
// Files the configuration names that a restored node needs (certificates, keys, pinned key).
constexpr const char* kConfigFileKeys[] = {
    "vendor.ca_cert",     "vendor.client_cert", "vendor.client_key", "vendor.signing_key",
    "vendor_api.ca_cert", "vendor_api.cert",    "vendor_api.key"};

enum class Kind { kStore, kModelCache, kConfig };
constexpr const char* KindName(Kind k) {
  return k == Kind::kStore ? "store" : k == Kind::kModelCache ? "model_cache" : "config";
}

// One file of a backup: `name` inside the backup folder, from (and restored to) the path of
// config key `key`, plus `sub` below it when the key names a folder.
struct Item {
  Kind kind;
  std::string name, key, sub, source;
};

std::string Target(const Config& config, const Item& item) {
  const fs::path base = config.GetPath(item.key);
  return (item.sub.empty() ? base : base / item.sub).string();
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

// The stores `config` names that exist, ledger before budget (see the header).
std::vector<Item> Stores(const Config& config) {
  std::vector<Item> items = {
      {Kind::kStore, "stores/egress_ledger.db", kLedgerKey, "", ""},
      {Kind::kStore, "stores/privacy_budget.db", kBudgetKey, "", ""},
      {Kind::kStore, "stores/held_releases.db", "egress.held_releases_path", "", ""},
      {Kind::kStore, "stores/gallery.db", kGalleryKey, "", ""},
      {Kind::kStore, "stores/evaluation_state/reembedding.db", kStateDirKey, "reembedding.db", ""},
  };
  std::error_code ec;
  for (fs::directory_iterator it(fs::path(config.GetPath(kStateDirKey)) / "galleries", ec), end;
       !ec && it != end; it.increment(ec)) {
    const std::string file = it->path().filename().string();
    if (!absl::EndsWith(file, ".db")) continue;
    items.push_back({Kind::kStore, "stores/evaluation_state/galleries/" + file, kStateDirKey,
                     "galleries/" + file, ""});
  }
  std::vector<Item> present;
  for (Item& item : items) {
    item.source = Target(config, item);
    if (Exists(item.source)) present.push_back(item);
  }
  return present;
}

// The model cache's files, without what only a running pull keeps (.lock, .partial, .staging-*).
std::vector<Item> CacheFiles(const Config& config) {
  std::vector<Item> items;
  const fs::path root = config.GetPath(kCacheKey);
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string rel = fs::relative(it->path(), root, ec).string();
    if (it.depth() == 0 && absl::StartsWith(rel, ".")) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    items.push_back({Kind::kModelCache, "model_cache/" + rel, kCacheKey, rel, it->path().string()});
  }
  return items;
}

std::vector<Item> ConfigFiles(const Config& config, const std::string& config_path) {
  std::vector<Item> items = {{Kind::kConfig, "config/" + fs::path(config_path).filename().string(),
                              "", "", fs::absolute(config_path).lexically_normal().string()}};
  for (const char* key : kConfigFileKeys) {
    if (!config.IsSet(key)) continue;
    const std::string path = config.GetPath(key);
    items.push_back({Kind::kConfig,
                     absl::StrCat("config/", key, "-", fs::path(path).filename().string()), key, "",
                     path});
  }
  return items;
}

absl::Status ErrnoError(const std::string& path, const char* what) {
  return absl::UnavailableError(absl::StrCat(path, ": ", what, ": ", std::strerror(errno)));
}

// Run as root (a restore into /var/lib/fedface/partner), what is made takes the owner of the
// folder it is made in, as SQLite does for its journals, so the service's user can open it.
absl::Status OwnLikeParent(const fs::path& path) {
  if (::geteuid() != 0) return absl::OkStatus();
  struct stat parent;
  if (::stat(path.parent_path().c_str(), &parent) != 0 ||
      ::chown(path.c_str(), parent.st_uid, parent.st_gid) != 0) {
    return ErrnoError(path.string(), "cannot give it its folder's owner");
  }
  return absl::OkStatus();
}

// Creates `dir` and its missing parents, each 0700 and owned like the folder it is made in.
absl::Status MakePrivateDirs(const fs::path& dir) {
  std::vector<fs::path> missing;
  for (fs::path p = fs::absolute(dir).lexically_normal();
       !Exists(p.string()) && p.has_relative_path(); p = p.parent_path()) {
    missing.push_back(p);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0700) != 0 && errno != EEXIST)
      return ErrnoError(it->string(), "mkdir");
    if (::chmod(it->c_str(), 0700) != 0) return ErrnoError(it->string(), "chmod");
    RETURN_IF_ERROR(OwnLikeParent(*it));
  }
  return absl::OkStatus();
}

// Copies `from` to `to` (0600) through a temporary file, fsynced and renamed into place, so a
// crash leaves the old file or the new one. A store's -wal/-shm beside `to` belong to the file
// being replaced and are removed first (SQLite would replay that journal into the new file).
absl::Status PlaceFile(const std::string& from, const std::string& to, bool store) {
  RETURN_IF_ERROR(MakePrivateDirs(fs::path(to).parent_path()));
  const std::string tmp = absl::StrCat(to, ".restore-", ::getpid());
  std::error_code ec;
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec)
    return absl::UnavailableError(absl::StrCat(tmp, ": cannot copy ", from, ": ", ec.message()));
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fchmod(fd, 0600) != 0 || ::fsync(fd) != 0) {
    absl::Status s = ErrnoError(tmp, "cannot make durable");
    if (fd >= 0) ::close(fd);
    fs::remove(tmp, ec);
    return s;
  }
  ::close(fd);
  RETURN_IF_ERROR(OwnLikeParent(tmp));
  if (store) {
    fs::remove(to + "-wal", ec);
    fs::remove(to + "-shm", ec);
  }
  if (::rename(tmp.c_str(), to.c_str()) != 0) return ErrnoError(to, "cannot rename into place");
  return SyncDirectory(fs::path(to).parent_path().string());
}

// Figures of the stores at these paths ("" or a missing file: empty).
absl::StatusOr<StateFigures> FiguresOf(const std::string& gallery, const std::string& ledger,
                                       const std::string& budget, double epsilon_budget) {
  StateFigures f;
  f.epsilon_budget = epsilon_budget;
  f.ledger_head_hash = std::string(kLedgerGenesisHash);
  if (!gallery.empty() && Exists(gallery)) {
    ASSIGN_OR_RETURN(auto store, OpenGalleryStore(SqliteGallerySpec(gallery, /*must_exist=*/true)));
    ASSIGN_OR_RETURN(auto subjects, store->Subjects());
    f.subjects = static_cast<int64_t>(subjects.size());
    for (const SubjectRecord& s : subjects) f.images += s.enrolled_images;
  }
  if (!ledger.empty() && Exists(ledger)) {
    ASSIGN_OR_RETURN(auto opened, EgressLedger::Open(ledger, EgressLedger::OpenMode::kMustExist));
    ASSIGN_OR_RETURN(auto verdict, opened->Verify());
    ASSIGN_OR_RETURN(auto head, opened->Head());
    f.ledger_entries = verdict.entry_count;
    f.ledger_head_seq = head.seq;
    f.ledger_head_hash = head.entry_hash;
  }
  if (!budget.empty() && Exists(budget)) {
    ASSIGN_OR_RETURN(auto opened, PrivacyBudget::Open(budget, epsilon_budget));
    ASSIGN_OR_RETURN(auto spent, opened->SpentByAll());
    f.epsilon_spent = spent;
  }
  return f;
}

absl::StatusOr<double> EpsilonBudget(const Config& config) {
  ASSIGN_OR_RETURN(EgressSettings egress, EgressSettingsFrom(config));
  return egress.epsilon_budget;
}

// A manifest name or sub-path must stay inside its folder.
bool SafeRelative(const std::string& p) {
  const fs::path path(p);
  if (p.empty() || path.is_absolute()) return false;
  for (const fs::path& part : path) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

absl::StatusOr<std::vector<Item>> ReadManifest(const std::string& from, nlohmann::json* manifest) {
  const std::string path = (fs::path(from) / kManifest).string();
  absl::StatusOr<std::string> text = ReadFile(path, 64 << 20);
  if (!text.ok()) {
    return absl::NotFoundError(
        absl::StrCat(path, ": ", text.status().message(), " (not a backup, or an unfinished one)"));
  }
  std::vector<Item> items;
  try {
    *manifest = nlohmann::json::parse(*text);
    if (manifest->at("format").get<std::string>() != kFormat) throw std::runtime_error("format");
    for (const auto& f : manifest->at("files")) {
      Item item{Kind::kConfig, f.at("name"), f.at("key"), f.at("sub"), f.at("source")};
      const std::string kind = f.at("kind");
      item.kind = kind == "store"         ? Kind::kStore
                  : kind == "model_cache" ? Kind::kModelCache
                                          : Kind::kConfig;
      if (!SafeRelative(item.name) || (!item.sub.empty() && !SafeRelative(item.sub))) {
        throw std::runtime_error("unsafe file name " + item.name);
      }
      items.push_back(item);
    }
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat(path, ": not a valid backup manifest: ", e.what()));
  }
  return items;
}

}  // namespace

std::string FormatFigures(const StateFigures& f) {
  return absl::StrFormat(
      "gallery: %d subjects, %d images; ledger: %d entries, head %d %s; privacy budget: %g of %g "
      "epsilon spent, %g left",
      f.subjects, f.images, f.ledger_entries, f.ledger_head_seq, f.ledger_head_hash,
      f.epsilon_spent, f.epsilon_budget, f.epsilon_budget - f.epsilon_spent);
}

absl::StatusOr<StateFigures> ReadFigures(const Config& config) {
  ASSIGN_OR_RETURN(double budget, EpsilonBudget(config));
  return FiguresOf(config.GetPath(kGalleryKey), config.GetPath(kLedgerKey),
                   config.GetPath(kBudgetKey), budget);
}

absl::StatusOr<StateFigures> BackupState(const Config& config, const std::string& config_path,
                                         const std::string& to) {
  if (config.GetString("gallery.store") != "sqlite") {
    // A consistent copy of a shared PostgreSQL gallery is the database's own job (pg_dump), and
    // a backup without the gallery would restore a partner that has none: refuse, say why.
    return absl::FailedPreconditionError(
        "gallery.store is postgresql: back the gallery up with pg_dump; `state backup` copies a "
        "partner whose stores are all SQLite");
  }
  ASSIGN_OR_RETURN(double epsilon_budget, EpsilonBudget(config));
  std::error_code ec;
  if (Exists(to) && !fs::is_empty(to, ec)) {
    return absl::AlreadyExistsError(absl::StrCat(to, ": not empty; back up into a new folder"));
  }
  RETURN_IF_ERROR(MakePrivateDirs(to));
  if (::chmod(to.c_str(), 0700) != 0) return ErrnoError(to, "chmod");  // also an empty one given
  const fs::path root = to;
  std::vector<Item> items = Stores(config);
  std::string gallery_copy, ledger_copy, budget_copy;
  for (const Item& item : items) {
    const fs::path dest = root / item.name;
    RETURN_IF_ERROR(MakePrivateDirs(dest.parent_path()));
    RETURN_IF_ERROR(OnlineCopy(item.source, dest.string()));
    if (item.key == kGalleryKey) gallery_copy = dest.string();
    if (item.key == kLedgerKey) ledger_copy = dest.string();
    if (item.key == kBudgetKey) budget_copy = dest.string();
  }
  for (const std::vector<Item>& more : {CacheFiles(config), ConfigFiles(config, config_path)}) {
    for (const Item& item : more) {
      const fs::path dest = root / item.name;
      RETURN_IF_ERROR(MakePrivateDirs(dest.parent_path()));
      fs::copy_file(item.source, dest, ec);
      if (ec) return absl::UnavailableError(absl::StrCat(item.source, ": ", ec.message()));
      items.push_back(item);
    }
  }
  // Figures from the copies (their connections are closed again before the files are hashed).
  ASSIGN_OR_RETURN(StateFigures figures,
                   FiguresOf(gallery_copy, ledger_copy, budget_copy, epsilon_budget));
  nlohmann::json files = nlohmann::json::array();
  for (const Item& item : items) {
    const std::string path = (root / item.name).string();
    if (::chmod(path.c_str(), 0600) != 0) return ErrnoError(path, "chmod");
    ASSIGN_OR_RETURN(std::string sha, Sha256HexOfFile(path));
    files.push_back({{"name", item.name},
                     {"kind", KindName(item.kind)},
                     {"key", item.key},
                     {"sub", item.sub},
                     {"source", item.source},
                     {"bytes", fs::file_size(path, ec)},
                     {"sha256", sha}});
  }
  const nlohmann::json manifest = {
      {"format", kFormat},
      {"created_utc", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone())},
      {"partner_node_version", FEDFACE_VERSION},
      {"ledger_head", {{"seq", figures.ledger_head_seq}, {"hash", figures.ledger_head_hash}}},
      {"figures",
       {{"subjects", figures.subjects},
        {"images", figures.images},
        {"ledger_entries", figures.ledger_entries},
        {"epsilon_spent", figures.epsilon_spent}}},
      {"files", files}};
  const std::string manifest_path = (root / kManifest).string();
  RETURN_IF_ERROR(WriteFileAtomically(manifest_path, manifest.dump(2) + "\n"));
  if (::chmod(manifest_path.c_str(), 0600) != 0) return ErrnoError(manifest_path, "chmod");
  return figures;
}

absl::StatusOr<StateFigures> RestoreState(const Config& config, const std::string& from,
                                          bool force) {
  nlohmann::json manifest;
  ASSIGN_OR_RETURN(std::vector<Item> items, ReadManifest(from, &manifest));
  // 1. Every file of the backup is what the manifest says, before anything is written.
  for (const Item& item : items) {
    const std::string path = (fs::path(from) / item.name).string();
    absl::StatusOr<std::string> sha = Sha256HexOfFile(path);
    if (!sha.ok()) {
      return absl::DataLossError(absl::StrCat(path, ": ", sha.status().message(),
                                              " (listed in manifest.json); nothing restored"));
    }
    std::string expected;
    for (const auto& f : manifest["files"]) {
      if (f["name"] == item.name) expected = f["sha256"];
    }
    if (*sha != expected) {
      return absl::DataLossError(absl::StrCat(
          path, ": sha256 differs from manifest.json (the backup is damaged); nothing restored"));
    }
  }
  // 2. The targets: refused when they hold state (unless force) or a process has them open.
  std::vector<std::string> old_stores;
  for (const Item& store : Stores(config)) old_stores.push_back(store.source);
  for (const Item& item : items) {
    if (item.kind == Kind::kStore && Exists(Target(config, item))) {
      old_stores.push_back(Target(config, item));
    }
  }
  for (const std::string& path : old_stores) {
    ASSIGN_OR_RETURN(bool open, OpenElsewhere(path));
    if (open) {
      return absl::FailedPreconditionError(absl::StrCat(
          path,
          ": open in another process (partner_node serve, enroll or local-api): stop it "
          "first; nothing restored"));
    }
    if (!force) {
      return absl::AlreadyExistsError(absl::StrCat(
          path, ": exists; refusing to overwrite state (--force replaces it); nothing restored"));
    }
  }
  // An older backup over a longer ledger would forget releases and give back their budget.
  const std::string old_ledger = config.GetPath(kLedgerKey);
  const int64_t backup_seq = manifest["ledger_head"]["seq"].get<int64_t>();
  if (Exists(old_ledger)) {
    ASSIGN_OR_RETURN(auto opened,
                     EgressLedger::Open(old_ledger, EgressLedger::OpenMode::kMustExist));
    ASSIGN_OR_RETURN(auto head, opened->Head());
    if (head.seq > backup_seq) {
      return absl::FailedPreconditionError(absl::StrCat(
          old_ledger, ": has ", head.seq, " entries, the backup ", backup_seq,
          ": restoring would forget releases sent since and give back their privacy budget; "
          "nothing restored"));
    }
  }
  const std::vector<Item> old_cache = CacheFiles(config);
  if (!force && !old_cache.empty()) {
    return absl::AlreadyExistsError(absl::StrCat(
        config.GetPath(kCacheKey),
        ": holds models; refusing to overwrite (--force replaces it); nothing restored"));
  }
  // 3. Place: the old state goes (a store absent from the backup must not survive beside it).
  std::error_code ec;
  for (const std::string& path : old_stores) {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix, ec);
  }
  if (!old_cache.empty()) {  // whole version folders, so no empty one is left to look installed
    for (fs::directory_iterator it(config.GetPath(kCacheKey), ec), end; !ec && it != end;
         it.increment(ec)) {
      if (!absl::StartsWith(it->path().filename().string(), ".")) fs::remove_all(it->path(), ec);
    }
  }
  for (const Item& item : items) {
    if (item.kind == Kind::kConfig) continue;
    RETURN_IF_ERROR(PlaceFile((fs::path(from) / item.name).string(), Target(config, item),
                              item.kind == Kind::kStore));
  }
  // 4. The restored ledger's chain holds and ends where it ended at backup time.
  ASSIGN_OR_RETURN(StateFigures figures, ReadFigures(config));
  const std::string head = manifest["ledger_head"]["hash"];
  if (figures.ledger_head_hash != head || figures.ledger_head_seq != backup_seq) {
    return absl::DataLossError(absl::StrCat(config.GetPath(kLedgerKey),
                                            ": restored ledger head differs from manifest.json"));
  }
  const std::string ledger = config.GetPath(kLedgerKey);
  if (Exists(ledger)) {
    ASSIGN_OR_RETURN(auto opened, EgressLedger::Open(ledger, EgressLedger::OpenMode::kMustExist));
    ASSIGN_OR_RETURN(auto verdict, opened->Verify());
    if (!verdict.ok) {
      return absl::DataLossError(absl::StrCat(ledger, ": restored ledger BROKEN at entry ",
                                              verdict.first_bad_seq, ": ", verdict.reason));
    }
  }
  return figures;
}

}  // namespace fedface::partner
