#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "sim/core/error.h"
#include "sim/core/file_io.h"

namespace fs = std::filesystem;
using moesim::OutputFile;
using moesim::write_file_atomic;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char name[] = "/tmp/moesim-io-XXXXXX";
    REQUIRE(mkdtemp(name) != nullptr);
    path = name;
  }
  ~TempDir() { fs::remove_all(path); }
  // Entries of the folder, to see that no temporary file is left behind.
  size_t entries() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(path), {}));
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST_CASE("regular files are replaced whole, keeping their permissions", "[io][robust]") {
  TempDir dir;
  const std::string file = (dir.path / "report.json").string();
  write_file_atomic(file, "old");
  chmod(file.c_str(), 0600);
  write_file_atomic(file, "new content");
  CHECK(slurp(file) == "new content");
  struct stat st {};
  REQUIRE(stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(dir.entries() == 1);
  {
    OutputFile out(file);
    out.write("half");
    CHECK(out.atomic());
  }  // destroyed without commit(): the old content stays, no temporary is left
  CHECK(slurp(file) == "new content");
  CHECK(dir.entries() == 1);
}

TEST_CASE("a symbolic link keeps pointing at its replaced target", "[io][robust]") {
  TempDir dir;
  const fs::path target = dir.path / "target.json", link = dir.path / "link.json";
  write_file_atomic(target.string(), "v1");
  fs::create_symlink(target, link);
  write_file_atomic(link.string(), "v2");
  CHECK(fs::is_symlink(link));
  CHECK(slurp(target) == "v2");
}

TEST_CASE("a missing parent folder is an error, never created", "[io][robust]") {
  TempDir dir;
  const std::string file = (dir.path / "missing" / "report.json").string();
  CHECK_THROWS_WITH(write_file_atomic(file, "x"),
                    Catch::Contains("cannot write: folder") && Catch::Contains("does not exist"));
  CHECK(!fs::exists(dir.path / "missing"));
  CHECK_THROWS_WITH(write_file_atomic(dir.path.string(), "x"), Catch::Contains("is a folder"));
}

TEST_CASE("a FIFO is written through and stays a FIFO", "[io][robust]") {
  TempDir dir;
  const std::string fifo = (dir.path / "pipe").string();
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  std::string received;
  std::thread reader([&] { received = slurp(fifo); });
  write_file_atomic(fifo, "through the pipe");
  reader.join();
  CHECK(received == "through the pipe");
  struct stat st {};
  REQUIRE(lstat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK(dir.entries() == 1);
}

TEST_CASE("a FIFO whose reader leaves reports the failed write", "[io][robust]") {
  TempDir dir;
  const std::string fifo = (dir.path / "pipe").string();
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  // The reader opens the pipe and closes it at once; without SIGPIPE handling
  // the write would end the test process.
  std::thread reader([&] { std::ifstream in(fifo); });
  CHECK_THROWS_WITH(write_file_atomic(fifo, std::string(1 << 20, 'x')),
                    Catch::Contains("write failed: Broken pipe"));
  reader.join();
}

TEST_CASE("character devices are written through: /dev/null stays, /dev/full fails",
          "[io][robust]") {
  struct stat st {};
  REQUIRE(stat("/dev/null", &st) == 0);
  if (S_ISCHR(st.st_mode)) {  // (other programs on a shared machine may have replaced it)
    CHECK_NOTHROW(write_file_atomic("/dev/null", "discarded"));
    REQUIRE(stat("/dev/null", &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
  }
  if (access("/dev/full", W_OK) == 0) {
    CHECK_THROWS_WITH(write_file_atomic("/dev/full", "x"),
                      "/dev/full: write failed: No space left on device");
    REQUIRE(stat("/dev/full", &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
  }
}

TEST_CASE("check_room_for refuses what the file system cannot hold", "[io][robust]") {
  TempDir dir;
  const std::string file = (dir.path / "huge.moetrace").string();
  CHECK_NOTHROW(moesim::check_room_for(file, 1000));
  CHECK_THROWS_WITH(moesim::check_room_for(file, uint64_t{1} << 62),
                    Catch::Contains("needs 4611686018427387904 bytes"));
  const std::string fifo = (dir.path / "pipe").string();  // devices and FIFOs take what they take
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_NOTHROW(moesim::check_room_for(fifo, uint64_t{1} << 62));
}

TEST_CASE("read_file stops at its limit, also on endless devices", "[io][robust]") {
  CHECK_THROWS_WITH(moesim::read_file("/dev/zero", 1 << 20),
                    "/dev/zero: larger than 1048576 bytes (the limit for this input)");
  TempDir dir;
  const std::string file = (dir.path / "five.json").string();
  write_file_atomic(file, "12345");
  CHECK(moesim::read_file(file, 5) == "12345");
  CHECK_THROWS_WITH(moesim::read_file(file, 4), Catch::Contains("larger than 4 bytes"));
}
