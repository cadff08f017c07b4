#include "cli/config_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "storage/durable_file.h"
#include "util/bytes.h"

namespace gm::cli {
namespace {

namespace fs = std::filesystem;

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

std::string_view skip_blanks(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  return s;
}

// The key a line assigns ("KEY=..." or "export KEY=..."), with whether it said export;
// empty for anything else (blank, comment, not an assignment), as server/config.cc reads it.
std::string_view assigned_key(std::string_view line, bool* exported = nullptr) {
  line = skip_blanks(line);
  bool has_export = false;
  if (line.substr(0, 7) == "export " || line.substr(0, 7) == "export\t") {
    line = skip_blanks(line.substr(7));
    has_export = true;
  }
  size_t k = 0;
  while (k < line.size() && is_key_char(line[k])) ++k;
  if (k == 0) return {};
  if (std::string_view rest = skip_blanks(line.substr(k)); rest.empty() || rest.front() != '=') return {};
  if (exported) *exported = has_export;
  return line.substr(0, k);
}

// A commented-out example of `key`: "#KEY=..." or "# KEY=...".
bool is_example_of(std::string_view line, std::string_view key) {
  line = skip_blanks(line);
  if (line.empty() || line.front() != '#') return false;
  return assigned_key(line.substr(1)) == key;
}

bool is_value_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == ':' || c == '%' || c == '/' || c == '@' || c == '+' || c == '-';
}

// Paths in the settings are taken from `base` when relative.
void anchor(std::string& path, const fs::path& base) {
  if (!path.empty() && fs::path(path).is_relative()) path = (base / path).lexically_normal().string();
}

}  // namespace

ConfigFile choose_config_file(const std::optional<std::string>& flag, const std::string& system_file) {
  if (flag) return ConfigFile{*flag, /*service_file=*/true, /*system=*/*flag == system_file};
  if (std::error_code ec; fs::exists(system_file, ec)) return ConfigFile{system_file, true, true};
  return ConfigFile{".env", false, false};
}

Status check_config_value(std::string_view key, std::string_view value) {
  if (value.empty()) return error(std::string(key) + ": an empty value");
  if (value.size() > 2048) return error(std::string(key) + ": longer than 2048 characters");
  for (char c : value) {
    if (!is_value_char(c)) {
      return error(std::string(key) + "=" + std::string(value.substr(0, 200)) +
                   ": only letters, digits and . _ : % / @ + - can be written unquoted in the settings file; "
                   "edit the file by hand for anything else");
    }
  }
  return Status::Ok();
}

Result<std::string> set_config_values(std::string_view text,
                                      const std::vector<std::pair<std::string, std::string>>& values) {
  // Lines without their '\n' (a last line without one is a line too).
  std::vector<std::string> lines;
  for (size_t start = 0; start < text.size();) {
    const size_t nl = text.find('\n', start);
    const size_t end = nl == std::string_view::npos ? text.size() : nl;
    lines.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  for (const auto& [key, value] : values) {
    if (key.empty() || !std::all_of(key.begin(), key.end(), is_key_char)) {
      return error("\"" + key + "\" is not a setting's name");
    }
    GM_TRY(check_config_value(key, value));
    size_t assigned = lines.size(), example = lines.size();
    bool exported = false;
    for (size_t i = 0; i < lines.size(); ++i) {
      bool e = false;
      if (assigned_key(lines[i], &e) == key) {
        assigned = i;
        exported = e;
      } else if (example == lines.size() && is_example_of(lines[i], key)) {
        example = i;
      }
    }
    std::string line = (exported ? "export " : "") + key + "=" + value;
    if (assigned < lines.size()) {
      if (!lines[assigned].empty() && lines[assigned].back() == '\r') line += '\r';  // CRLF file
      lines[assigned] = std::move(line);
    } else if (example < lines.size()) {
      lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(example) + 1, std::move(line));
    } else {
      lines.push_back(std::move(line));
    }
  }
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

bool holds_secret(const server::EnvMap& values) {
  for (const auto& [key, value] : values) {
    if (value.empty()) continue;
    std::string upper = key;
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
    if (upper.find("SECRET") != std::string::npos || upper.find("PASSWORD") != std::string::npos) return true;
  }
  return false;
}

Result<ConfigText> read_config_text(const std::string& path) {
  ConfigText out;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return out;
    return error(ErrorCode::kIo, "cannot read " + path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return error(ErrorCode::kIo, "cannot read " + path + ": " + std::strerror(errno));
  out.text = std::move(text).str();
  out.exists = true;
  return out;
}

Status write_config_file(const std::string& path, const std::string& text, bool secret) {
  // Through a symbolic link to the file it names, which stays a link.
  std::error_code ec;
  fs::path target = fs::absolute(path, ec);  // the folder is flushed too: it needs a name
  if (ec) return error(ErrorCode::kIo, "cannot find " + path + ": " + ec.message());
  if (fs::is_symlink(target, ec)) {
    target = fs::canonical(target, ec);
    if (ec) return error(ErrorCode::kIo, path + " is a symbolic link to nothing: " + ec.message());
  }
  struct stat before {};
  const bool existed = ::stat(target.c_str(), &before) == 0;
  if (!existed && errno != ENOENT) return error(ErrorCode::kIo, "cannot look at " + path + ": " + std::strerror(errno));
  if (existed && !S_ISREG(before.st_mode)) return error(path + " is not a regular file");
  const fs::path folder = target.parent_path();
  GM_TRY(check_config_writable(path));
  mode_t mode = existed ? before.st_mode & 07777 : 0600;
  if (secret) mode &= ~static_cast<mode_t>(S_IRWXO);
  // The new file gets its owner and mode through its own descriptor, before it takes the
  // old one's place: nothing is ever done by path after the rename, where whoever may
  // write the folder could have put a symbolic link to another file (found by review:
  // root would have given that file away). A crash leaves the old file or the new one,
  // each with the right owner and mode.
  std::string temp = (folder / ("." + target.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkstemp(temp.data());  // O_EXCL, mode 0600: never more open than it will be
  if (fd < 0) return error(ErrorCode::kIo, "cannot create a file in " + folder.string() + ": " + std::strerror(errno));
  auto fail = [&](const std::string& what) {
    const int e = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    return error(ErrorCode::kIo, what + ": " + std::strerror(e));
  };
  for (size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("cannot write " + temp);
    done += static_cast<size_t>(n);
  }
  if (existed && (before.st_uid != ::geteuid() || before.st_gid != ::getegid()) &&
      ::fchown(fd, before.st_uid, before.st_gid) != 0) {
    return fail("cannot give the new " + path + " its owner (uid " + std::to_string(before.st_uid) + ", gid " +
                std::to_string(before.st_gid) + "); nothing was changed");
  }
  if (::fchmod(fd, mode) != 0) return fail("cannot set the mode of the new " + path);
  if (::fsync(fd) != 0) return fail("cannot flush " + temp);
  if (::close(fd) != 0) {
    ::unlink(temp.c_str());
    return error(ErrorCode::kIo, "cannot write " + temp + ": " + std::strerror(errno));
  }
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    const int e = errno;
    ::unlink(temp.c_str());
    return error(ErrorCode::kIo, "cannot replace " + path + ": " + std::strerror(e));
  }
  return storage::sync_directory(folder);
}

Status check_config_writable(const std::string& path) {
  std::error_code ec;
  fs::path target = fs::absolute(path, ec);
  if (ec) return error(ErrorCode::kIo, "cannot find " + path + ": " + ec.message());
  if (fs::is_symlink(target, ec)) target = fs::canonical(target, ec);
  const fs::path folder = target.parent_path();
  if (::access(folder.c_str(), W_OK | X_OK) != 0) {
    return error(ErrorCode::kIo, "cannot write in " + folder.string() + " (" + std::strerror(errno) +
                                     "): run as a user who may (for " + std::string(kSystemConfigFile) +
                                     ": with sudo), or give --config FILE");
  }
  struct stat st {};
  if (::stat(target.c_str(), &st) != 0) return Status::Ok();  // a new file: the caller's
  if (!S_ISREG(st.st_mode)) return error(path + " is not a regular file");
  // Only root may hand a file back to another owner: anyone else would leave it theirs.
  if (::geteuid() != 0 && st.st_uid != ::geteuid()) {
    return error(path + " belongs to uid " + std::to_string(st.st_uid) + ": run setup as its owner, or with sudo");
  }
  return Status::Ok();
}

Result<std::vector<std::pair<std::string, std::string>>> setting_flags(std::string_view args) {
  static constexpr std::string_view kSettingFlags[] = {"--data",    "--port",     "--owner",  "--public-host",
                                                       "--plc-url", "--tls-cert", "--tls-key"};
  std::vector<std::string> words;
  for (size_t i = 0; i < args.size();) {
    while (i < args.size() && (is_blank(args[i]) || args[i] == '\n')) ++i;
    const size_t start = i;
    while (i < args.size() && !is_blank(args[i]) && args[i] != '\n') ++i;
    if (i > start) words.emplace_back(args.substr(start, i - start));
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < words.size(); ++i) {
    std::string flag = words[i];
    std::optional<std::string> value;
    if (size_t eq = flag.find('='); eq != std::string::npos && flag.starts_with("--")) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
    }
    if (std::find(std::begin(kSettingFlags), std::end(kSettingFlags), flag) == std::end(kSettingFlags)) continue;
    if (!value) {
      if (i + 1 >= words.size() || words[i + 1].starts_with("--")) {
        return error("GROUNDMIST_SYNC_ARGS: " + flag + " without its value");
      }
      value = words[++i];
    }
    out.emplace_back(flag, *value);
  }
  return out;
}

Result<LoadedSettings> load_settings(const ConfigFile& file, server::Environment::Getenv getenv,
                                     const std::optional<std::string>& new_text) {
  LoadedSettings out;
  ConfigText text;
  if (new_text) {
    text.text = *new_text;
    text.exists = true;
  } else {
    GM_ASSIGN_OR_RETURN(text, read_config_text(file.path));
  }
  if (!text.exists && file.service_file) {
    return error(ErrorCode::kNotFound, "no settings file " + file.path +
                                           ": give the one the server reads (--config FILE), or write it with "
                                           "`groundmist-sync setup`");
  }
  out.file_exists = text.exists;
  out.file_values = server::parse_dotenv(text.text);
  if (file.system) out.config.data_dir = kSystemDataDir;
  if (file.service_file) {
    // The unit's environment is the file: the shell's variables are not the service's.
    getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  }
  const server::Environment env(out.file_values, std::move(getenv));
  GM_TRY(server::apply_environment(env, out.config));
  if (!file.service_file) return out;

  if (auto args = out.file_values.find("GROUNDMIST_SYNC_ARGS"); args != out.file_values.end()) {
    GM_ASSIGN_OR_RETURN(auto flags, setting_flags(args->second));
    for (const auto& [flag, value] : flags) {
      if (flag == "--data") out.config.data_dir = value;
      if (flag == "--owner") out.config.owner_did = value;
      if (flag == "--public-host") out.config.public_host = value;
      if (flag == "--plc-url") out.config.plc_url = value;
      if (flag == "--tls-cert") out.config.tls_cert_file = value;
      if (flag == "--tls-key") out.config.tls_key_file = value;
      if (flag == "--port") {
        char* end = nullptr;
        errno = 0;
        const long port = std::strtol(value.c_str(), &end, 10);
        if (errno != 0 || end == value.c_str() || *end != '\0' || port < 0 || port > 65535) {
          return error("GROUNDMIST_SYNC_ARGS: --port " + value + " is not a port number (0-65535)");
        }
        out.config.port = static_cast<uint16_t>(port);
      }
      out.overridden.push_back(flag + " from GROUNDMIST_SYNC_ARGS");
    }
  }
  std::error_code ec;
  const fs::path base = file.system ? fs::path(kSystemDataDir) : fs::absolute(file.path, ec).parent_path();
  anchor(out.config.data_dir, base);
  anchor(out.config.tls_cert_file, base);
  anchor(out.config.tls_key_file, base);
  return out;
}

}  // namespace gm::cli
