#include "shadowd/notice/gce_metadata.h"

#include <gtest/gtest.h>

#include <string>

namespace vs::notice {
namespace {

TEST(GceMetadataTest, PreemptedIsTrueOrFalse) {
  EXPECT_EQ(*ParseGcePreempted("TRUE"), true);
  EXPECT_EQ(*ParseGcePreempted("FALSE"), false);
  EXPECT_EQ(*ParseGcePreempted("TRUE\n"), true);
  EXPECT_EQ(*ParseGcePreempted("FALSE\r\n"), false);
  for (const char* bad : {"", "true", "YES", "1", " TRUE", "TRUE FALSE", "TRUEE", "<html>captive portal</html>"}) {
    StatusOr<bool> parsed = ParseGcePreempted(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("expected TRUE or FALSE"), std::string::npos)
        << parsed.status().ToString();
    EXPECT_NE(parsed.status().message().find("instance/preempted"), std::string::npos);
  }
}

TEST(GceMetadataTest, MaintenanceEventValues) {
  EXPECT_EQ(*ParseGceMaintenanceEvent("NONE"), GceMaintenanceEvent::kNone);
  EXPECT_EQ(*ParseGceMaintenanceEvent("MIGRATE_ON_HOST_MAINTENANCE"), GceMaintenanceEvent::kMigrateOnHostMaintenance);
  EXPECT_EQ(*ParseGceMaintenanceEvent("TERMINATE_ON_HOST_MAINTENANCE\n"),
            GceMaintenanceEvent::kTerminateOnHostMaintenance);
  for (GceMaintenanceEvent e : {GceMaintenanceEvent::kNone, GceMaintenanceEvent::kMigrateOnHostMaintenance,
                                GceMaintenanceEvent::kTerminateOnHostMaintenance}) {
    EXPECT_EQ(*ParseGceMaintenanceEvent(GceMaintenanceEventName(e)), e);
  }
  for (const char* bad : {"", "none", "MIGRATE", "TERMINATE_ON_HOST_MAINTENANCE_X", "NONE\nNONE"}) {
    StatusOr<GceMaintenanceEvent> parsed = ParseGceMaintenanceEvent(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("MIGRATE_ON_HOST_MAINTENANCE"), std::string::npos);
  }
}

TEST(GceMetadataTest, ResponsesMustComeFromTheMetadataServer) {
  HttpResponse good{.status = 200, .headers = {{"Metadata-Flavor", "Google"}}, .body = "FALSE"};
  EXPECT_TRUE(CheckGceResponse(good, "GET u").ok());
  HttpResponse lower_case_name{.status = 200, .headers = {{"metadata-flavor", "Google"}}};
  EXPECT_TRUE(CheckGceResponse(lower_case_name, "GET u").ok());

  HttpResponse no_header{.status = 200, .body = "FALSE"};
  Status missing = CheckGceResponse(no_header, "GET u");
  EXPECT_EQ(missing.code(), Code::kInvalidArgument);
  EXPECT_NE(missing.message().find("Metadata-Flavor: Google"), std::string::npos) << missing.ToString();
  EXPECT_NE(missing.message().find("<none>"), std::string::npos) << missing.ToString();

  HttpResponse other_flavor{.status = 200, .headers = {{"Metadata-Flavor", "Amazon"}}};
  Status wrong = CheckGceResponse(other_flavor, "GET u");
  EXPECT_EQ(wrong.code(), Code::kInvalidArgument);
  EXPECT_NE(wrong.message().find("'Amazon'"), std::string::npos) << wrong.ToString();

  HttpResponse unavailable{.status = 503, .headers = {{"Metadata-Flavor", "Google"}}, .body = "busy"};
  Status busy = CheckGceResponse(unavailable, "GET u");
  EXPECT_EQ(busy.code(), Code::kUnavailable);
  EXPECT_NE(busy.message().find("HTTP 503"), std::string::npos) << busy.ToString();
  HttpResponse forbidden{.status = 403, .headers = {{"Metadata-Flavor", "Google"}}};
  EXPECT_EQ(CheckGceResponse(forbidden, "GET u").code(), Code::kFailedPrecondition);
}

}  // namespace
}  // namespace vs::notice
