#include "sim/core/file_io.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "sim/core/error.h"

namespace moesim {
namespace {

namespace fs = std::filesystem;

std::string folder_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// What kind of thing `path` names today, following symbolic links.
enum class TargetKind { kMissing, kRegular, kCharDevice, kFifo, kFolder, kOther };

TargetKind target_kind(const std::string& path, struct stat& st) {
  if (::stat(path.c_str(), &st) != 0) return TargetKind::kMissing;
  if (S_ISREG(st.st_mode)) return TargetKind::kRegular;
  if (S_ISCHR(st.st_mode)) return TargetKind::kCharDevice;
  if (S_ISFIFO(st.st_mode)) return TargetKind::kFifo;
  if (S_ISDIR(st.st_mode)) return TargetKind::kFolder;
  return TargetKind::kOther;
}

// Writing to a FIFO whose reader has gone raises SIGPIPE, whose default action
// ends the process without a word. Blocks it on this thread while writing, so
// write() fails with EPIPE instead, and swallows the signal it left pending.
class SigpipeBlocked {
 public:
  explicit SigpipeBlocked(bool active) : active_(active) {
    if (!active_) return;
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlocked() {
    if (!active_) return;
    if (!was_pending_) {
      const timespec no_wait{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &no_wait) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

 private:
  bool active_;
  bool was_pending_ = false;
  sigset_t pipe_{}, old_{};
};

std::atomic<uint64_t> temp_counter{0};

}  // namespace

std::string read_file(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  auto too_large = [&] {
    return Error(
        fmt::format("{}: larger than {} bytes (the limit for this input)", path, max_bytes));
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<uint64_t>(st.st_size) > max_bytes) {
    throw too_large();
  }
  // Devices and pipes have no size to check first: read in chunks up to the limit.
  std::string content;
  char chunk[1 << 16];
  while (in) {
    in.read(chunk, sizeof chunk);
    const auto got = static_cast<size_t>(in.gcount());
    if (content.size() + got > max_bytes) throw too_large();
    content.append(chunk, got);
  }
  if (in.bad()) throw Error(fmt::format("{}: read error", path));
  return content;
}

OutputFile::OutputFile(const std::string& path) : path_(path) {
  if (path.empty()) throw Error("output path is empty");
  struct stat st {};
  const TargetKind kind = target_kind(path, st);
  const bool system_path = path.starts_with("/dev/") || path.starts_with("/proc/");
  if (kind == TargetKind::kFolder) throw Error(fmt::format("{}: is a folder, not a file", path));
  if (kind == TargetKind::kOther) {
    throw Error(fmt::format("{}: is a block device or socket; refusing to write to it", path));
  }
  if (kind == TargetKind::kCharDevice || kind == TargetKind::kFifo ||
      (system_path && kind == TargetKind::kRegular)) {
    // /dev/stdout redirected to a file is such a regular file: the shell holds
    // it open, so it must be written in place, not replaced.
    fifo_ = kind == TargetKind::kFifo;
    const int flags = O_WRONLY | O_CLOEXEC | (kind == TargetKind::kRegular ? O_TRUNC : 0);
    fd_ = ::open(path.c_str(), flags);
    if (fd_ < 0) fail("cannot write", errno);
    return;
  }
  if (system_path) throw Error(fmt::format("{}: does not exist", path));
  // A regular file or a new one. A symbolic link is followed to its target, so
  // the link survives and its target is what gets replaced.
  final_path_ = path;
  struct stat link {};
  if (::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
    std::error_code ec;
    const fs::path target = fs::canonical(path, ec);
    if (ec) throw Error(fmt::format("{}: symbolic link to a missing file", path));
    final_path_ = target.string();
  }
  const std::string folder = folder_of(final_path_);
  struct stat folder_st {};
  if (::stat(folder.c_str(), &folder_st) != 0 || !S_ISDIR(folder_st.st_mode)) {
    throw Error(fmt::format("{}: cannot write: folder '{}' does not exist", path, folder));
  }
  for (int attempt = 0; fd_ < 0; ++attempt) {
    temp_path_ = fmt::format("{}.tmp.{}.{}", final_path_, ::getpid(), temp_counter++);
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0 && (errno != EEXIST || attempt > 100)) {
      const int error_number = errno;
      temp_path_.clear();
      fail("cannot write", error_number);
    }
  }
  if (kind == TargetKind::kRegular) ::fchmod(fd_, st.st_mode & 07777);
}

OutputFile::~OutputFile() {
  discard();
}

void OutputFile::discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  temp_path_.clear();
}

void OutputFile::fail(const std::string& what, int error_number) {
  discard();
  throw Error(fmt::format("{}: {}: {}", path_, what, std::strerror(error_number)));
}

void OutputFile::write(std::string_view bytes) {
  if (fd_ < 0) throw Error(fmt::format("{}: write after the file was closed", path_));
  const SigpipeBlocked no_sigpipe(fifo_);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write failed", errno);
    }
    if (n == 0) fail("write failed", EIO);
    done += static_cast<size_t>(n);
  }
}

void OutputFile::commit() {
  if (fd_ < 0) throw Error(fmt::format("{}: committed twice", path_));
  if (!atomic()) {
    // Devices and FIFOs: nothing to sync (fsync fails on them with EINVAL),
    // but close can still report a deferred write error.
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("write failed", errno);
    return;
  }
  if (::fsync(fd_) != 0) fail("write failed", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("write failed", errno);
  if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    fail("cannot rename into place", errno);
  }
  temp_path_.clear();
}

void write_file_atomic(const std::string& path, std::string_view content) {
  OutputFile out(path);
  out.write(content);
  out.commit();
}

void check_room_for(const std::string& path, uint64_t bytes) {
  struct stat st {};
  const TargetKind kind = target_kind(path, st);
  if (kind != TargetKind::kRegular && kind != TargetKind::kMissing) return;
  struct statvfs fsinfo {};
  if (::statvfs(folder_of(path).c_str(), &fsinfo) != 0) return;  // OutputFile will say why
  // The old file's blocks come back only after the rename, so they do not count.
  const uint64_t free_bytes = static_cast<uint64_t>(fsinfo.f_bavail) * fsinfo.f_frsize;
  if (bytes > free_bytes) {
    throw Error(fmt::format("{}: needs {} bytes but its file system has {} bytes free", path, bytes,
                            free_bytes));
  }
}

}  // namespace moesim
