#pragma once
// File helpers with user-facing errors.

#include <cstdint>
#include <string>
#include <string_view>

namespace moesim {

// Largest input file read_file accepts by default: far above any scenario,
// sweep summary or calibration table, and a bound for /dev/zero or an endless pipe.
inline constexpr size_t kMaxInputFileBytes = size_t{256} << 20;

// Whole file as bytes; throws moesim::Error "<path>: cannot open: <reason>",
// or "<path>: larger than <max_bytes> bytes ..." before holding more than that.
std::string read_file(const std::string& path, size_t max_bytes = kMaxInputFileBytes);

// An output file (a report, a trace, a chart) written in one or many pieces.
//
// Where it goes decides how it is written:
//  - a regular file, or a path that does not exist yet: into a temporary file
//    "<path>.tmp.<pid>.<n>" in the same folder, flushed to disk and renamed
//    over `path` by commit(), so readers see the old file or the complete new
//    one, never a half-written one (a symbolic link keeps pointing at its
//    target, which is replaced; the target's permissions are kept);
//  - a character device (/dev/null, a terminal) or a FIFO, and any path under
//    /dev/ or /proc/ (/dev/stdout): written straight through, since renaming a
//    file over them would replace the device. Opening a FIFO waits for its
//    reader, as a shell redirection does.
// Errors are moesim::Error naming the path: a missing parent folder (never
// created silently), a folder, a block device or socket as target, a failed
// write ("<path>: write failed: No space left on device"). After an error, or
// when the OutputFile is destroyed without commit(), no temporary file is left.
class OutputFile {
 public:
  explicit OutputFile(const std::string& path);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void write(std::string_view bytes);
  // Makes the written bytes the file's content (rename, or close for devices).
  void commit();

  const std::string& path() const { return path_; }
  // True when the output is a temporary file renamed into place (regular files).
  bool atomic() const { return !temp_path_.empty(); }

 private:
  [[noreturn]] void fail(const std::string& what, int error_number);
  void discard();
  std::string path_;       // as the user gave it, for messages
  std::string temp_path_;  // empty when written straight through
  std::string final_path_;
  bool fifo_ = false;
  int fd_ = -1;
};

// Writes `content` to `path` through an OutputFile (atomic for regular files).
void write_file_atomic(const std::string& path, std::string_view content);

// Throws moesim::Error when `bytes` more bytes would not fit on the file system
// that holds `path`'s folder (only checked for regular-file outputs; devices and
// FIFOs take what they take):
//   "<path>: needs <bytes> bytes but its file system has <free> bytes free"
void check_room_for(const std::string& path, uint64_t bytes);

}  // namespace moesim
