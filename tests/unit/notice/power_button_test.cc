#include "shadowd/notice/power_button.h"

#include <gtest/gtest.h>
#include <linux/input.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/unit/notice/test_support.h"

namespace vs::notice {
namespace {

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::vector<std::byte> Record(uint16_t type, uint16_t code, int32_t value) {
  input_event event{};
  event.time.tv_sec = 1800000000;
  event.type = type;
  event.code = code;
  event.value = value;
  std::vector<std::byte> bytes(sizeof event);
  std::memcpy(bytes.data(), &event, sizeof event);
  return bytes;
}

TEST(AcpidLineTest, PowerButtonEventsInBothKernelSpellings) {
  for (const char* line : {"button/power PBTN 00000080 00000000", "button/power LNXPWRBN:00 00000080 00000001",
                           "button/power PWRF 00000080 0000000A", "button/power  PBTN  00000080 00000000"}) {
    StatusOr<bool> power = IsAcpidPowerButtonEvent(line);
    ASSERT_TRUE(power.ok()) << line << ": " << power.status().ToString();
    EXPECT_TRUE(*power) << line;
  }
}

TEST(AcpidLineTest, OtherEventsAreNotPowerButtonEvents) {
  for (const char* line : {"button/lid LID close", "ac_adapter ACPI0003:00 00000080 00000001",
                           "button/sleep SBTN 00000080 00000000", "jack/headphone HEADPHONE plug",
                           "video/brightnessup BRTUP 00000086 00000000", "button/powerx PBTN 00000080 00000000"}) {
    StatusOr<bool> power = IsAcpidPowerButtonEvent(line);
    ASSERT_TRUE(power.ok()) << line << ": " << power.status().ToString();
    EXPECT_FALSE(*power) << line;
  }
}

TEST(AcpidLineTest, MalformedLinesNameWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty line"},
      {"button/power", "at least one more field"},
      {"   ", "at least one more field"},
      {"button/power PBTN", "two 8-digit hex fields"},
      {"button/power PBTN 00000080", "two 8-digit hex fields"},
      {"button/power PBTN 0080 0000", "two 8-digit hex fields"},
      {"button/power PBTN 0000008G 00000000", "two 8-digit hex fields"},
      {"button/power PBTN 00000080 00000000 extra", "two 8-digit hex fields"},
      {"button/power\tPBTN 00000080 00000000", "control or non-ASCII"},
      {"button/power PBTN 00000080 00000000\r", "control or non-ASCII"},
      {"button/power P\xc3\xa9 00000080 00000000", "control or non-ASCII"},
      {std::string("button/power \0 00000080 00000000", 33), "control or non-ASCII"},
      {"button/power " + std::string(2000, 'A'), "longer than 1024"},
  };
  for (const auto& [line, why] : cases) {
    StatusOr<bool> power = IsAcpidPowerButtonEvent(line);
    ASSERT_FALSE(power.ok()) << line;
    EXPECT_EQ(power.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(Contains(power.status().message(), why)) << line << " -> " << power.status().ToString();
    EXPECT_LT(power.status().message().size(), 400u);
  }
}

TEST(InputEventTest, OnlyAKeyPowerPressCounts) {
  EXPECT_TRUE(*IsPowerKeyPress(Record(EV_KEY, KEY_POWER, 1)));
  EXPECT_FALSE(*IsPowerKeyPress(Record(EV_KEY, KEY_POWER, 0)));  // release
  EXPECT_FALSE(*IsPowerKeyPress(Record(EV_KEY, KEY_POWER, 2)));  // autorepeat
  EXPECT_FALSE(*IsPowerKeyPress(Record(EV_KEY, KEY_SLEEP, 1)));
  EXPECT_FALSE(*IsPowerKeyPress(Record(EV_SYN, SYN_REPORT, 0)));
  EXPECT_FALSE(*IsPowerKeyPress(Record(EV_MSC, KEY_POWER, 1)));  // code 116 of another type
  EXPECT_EQ(EV_KEY, 1);
  EXPECT_EQ(KEY_POWER, 116);
}

TEST(InputEventTest, MalformedRecordsNameWhatIsWrong) {
  for (int32_t value : {-1, 3, 1000}) {
    StatusOr<bool> press = IsPowerKeyPress(Record(EV_KEY, KEY_POWER, value));
    ASSERT_FALSE(press.ok()) << value;
    EXPECT_EQ(press.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(Contains(press.status().message(), "value " + std::to_string(value))) << press.status().ToString();
  }
  std::vector<std::byte> record = Record(EV_KEY, KEY_POWER, 1);
  for (size_t size : {size_t{0}, size_t{1}, record.size() - 1}) {
    StatusOr<bool> press = IsPowerKeyPress(std::span(record.data(), size));
    ASSERT_FALSE(press.ok()) << size;
    EXPECT_TRUE(Contains(press.status().message(), "expected " + std::to_string(kInputEventBytes))) << size;
  }
  record.push_back(std::byte{0});
  EXPECT_FALSE(IsPowerKeyPress(record).ok());
}

TEST(PowerButtonNoticeTest, IsAPreemptionDueAfterTheConfiguredTime) {
  const WallTime now = test_support::UnixSeconds(1800000000);
  Notice n = PowerButtonNotice(now, {.deadline_after_press = std::chrono::seconds(45)}, 3, "acpid: x");
  EXPECT_EQ(n, (Notice{.source = Notice::Source::kAcpiPowerButton,
                       .kind = Notice::Kind::kPreemption,
                       .deadline = now + std::chrono::seconds(45),
                       .id = "acpi-power-button/1800000000000/3",
                       .detail = "acpid: x"}));
  EXPECT_EQ(PowerButtonNotice(now, {}, 1, "").deadline, now + std::chrono::seconds(30));
}

TEST(NoticeNamesTest, EverySourceAndKindHasItsOwnName) {
  EXPECT_EQ(SourceName(Notice::Source::kAcpiPowerButton), "acpi-power-button");
  EXPECT_EQ(SourceName(Notice::Source::kGce), "gce");
  EXPECT_EQ(SourceName(Notice::Source::kAws), "aws");
  EXPECT_EQ(SourceName(Notice::Source::kAzure), "azure");
  EXPECT_EQ(SourceName(Notice::Source::kDrain), "drain");
  EXPECT_EQ(KindName(Notice::Kind::kPreemption), "preemption");
  EXPECT_EQ(KindName(Notice::Kind::kEarlyWarning), "early-warning");
}

TEST(NoticeNamesTest, PersistedNamesReadBack) {
  for (Notice::Source source : {Notice::Source::kAcpiPowerButton, Notice::Source::kGce, Notice::Source::kAws,
                                Notice::Source::kAzure, Notice::Source::kDrain}) {
    EXPECT_EQ(SourceFromName(SourceName(source)), source) << SourceName(source);
  }
  EXPECT_EQ(SourceFromName("ec2"), std::nullopt);
  for (Notice::Kind kind : {Notice::Kind::kPreemption, Notice::Kind::kEarlyWarning}) {
    EXPECT_EQ(KindFromName(KindName(kind)), kind) << KindName(kind);
  }
  EXPECT_EQ(KindFromName("reboot"), std::nullopt);
}

}  // namespace
}  // namespace vs::notice
