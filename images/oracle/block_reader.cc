#include "images/oracle/block_reader.h"

namespace vs::oracle {

StatusOr<std::vector<std::string>> BlockReader::ReadMany(const std::vector<std::uint64_t>& offsets,
                                                         std::size_t length) {
  std::vector<std::string> blocks;
  blocks.reserve(offsets.size());
  for (std::uint64_t offset : offsets) {
    VS_ASSIGN_OR_RETURN(std::string block, ReadAt(offset, length));
    blocks.push_back(std::move(block));
  }
  return blocks;
}

StatusOr<std::string> MemoryBlockReader::ReadAt(std::uint64_t offset, std::size_t length) {
  if (offset > bytes_.size() || length > bytes_.size() - offset) {
    return InvalidArgument("read of " + std::to_string(length) + " bytes at offset " + std::to_string(offset) +
                           " is beyond the end of a " + std::to_string(bytes_.size()) + "-byte image");
  }
  return bytes_.substr(offset, length);
}

}  // namespace vs::oracle
