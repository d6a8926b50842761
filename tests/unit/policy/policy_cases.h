// Policy elements and whether they are valid: one table that both the parser (domain_xml_test.cc)
// and the RelaxNG schema (schema_test.cc) must judge the same way.
#pragma once

#include <string>
#include <string_view>

#include "shadowd/policy/policy.h"

namespace vs::policy::testing {

struct PolicyCase {
  std::string_view element;  // a <policy> element without the xmlns declaration of the policy namespace
  bool valid;
};

inline constexpr PolicyCase kPolicyCases[] = {
    {R"(<policy/>)", true},
    {R"(<policy> </policy>)", true},
    {R"(<policy><!-- a comment --></policy>)", true},
    {R"(<policy enabled="yes" vcpus="2" memory="1GiB" interval="2m" warmup="no" priority="500" critical="yes"
                shadows="2" zone="require-other" cost-cap="0.25" hook-failure="open"/>)",
     true},
    // structure
    {R"(<policy><vcpus>2</vcpus></policy>)", false},
    {R"(<policy>vcpus=2</policy>)", false},
    {R"(<policy foo="1"/>)", false},
    {R"(<policy vpcus="2"/>)", false},
    {R"(<policy xmlns:s="http://virt-shadow.org/xmlns/policy/1.0" s:vcpus="2"/>)", false},
    // enabled, warmup, critical
    {R"(<policy enabled="no"/>)", true},
    {R"(<policy enabled="true"/>)", false},
    {R"(<policy enabled="YES"/>)", false},
    {R"(<policy enabled=""/>)", false},
    {R"(<policy warmup="yes"/>)", true},
    {R"(<policy warmup="1"/>)", false},
    {R"(<policy critical="yes"/>)", true},
    {R"(<policy critical="maybe"/>)", false},
    // vcpus
    {R"(<policy vcpus="1"/>)", true},
    {R"(<policy vcpus="64"/>)", true},
    {R"(<policy vcpus="1%"/>)", true},
    {R"(<policy vcpus="100%"/>)", true},
    {R"(<policy vcpus="0"/>)", false},
    {R"(<policy vcpus="-1"/>)", false},
    {R"(<policy vcpus="02"/>)", false},
    {R"(<policy vcpus=" 2"/>)", false},
    {R"(<policy vcpus="2.5"/>)", false},
    {R"(<policy vcpus="two"/>)", false},
    {R"(<policy vcpus="0%"/>)", false},
    {R"(<policy vcpus="101%"/>)", false},
    {R"(<policy vcpus="%"/>)", false},
    {R"(<policy vcpus="50 %"/>)", false},
    // memory
    {R"(<policy memory="64MiB"/>)", true},
    {R"(<policy memory="64M"/>)", true},
    {R"(<policy memory="65536KiB"/>)", true},
    {R"(<policy memory="65536K"/>)", true},
    {R"(<policy memory="1G"/>)", true},
    {R"(<policy memory="16GiB"/>)", true},
    {R"(<policy memory="25%"/>)", true},
    {R"(<policy memory="63MiB"/>)", false},
    {R"(<policy memory="65535KiB"/>)", false},
    {R"(<policy memory="0GiB"/>)", false},
    {R"(<policy memory="512"/>)", false},
    {R"(<policy memory="512MB"/>)", false},
    {R"(<policy memory="512mib"/>)", false},
    {R"(<policy memory="512 MiB"/>)", false},
    {R"(<policy memory="1.5GiB"/>)", false},
    {R"(<policy memory="1TiB"/>)", false},
    {R"(<policy memory="12XB"/>)", false},
    {R"(<policy memory="0%"/>)", false},
    {R"(<policy memory="150%"/>)", false},
    // interval
    {R"(<policy interval="1s"/>)", true},
    {R"(<policy interval="1000ms"/>)", true},
    {R"(<policy interval="1500ms"/>)", true},
    {R"(<policy interval="3600000ms"/>)", true},
    {R"(<policy interval="3600s"/>)", true},
    {R"(<policy interval="60m"/>)", true},
    {R"(<policy interval="1h"/>)", true},
    {R"(<policy interval="500ms"/>)", false},
    {R"(<policy interval="999ms"/>)", false},
    {R"(<policy interval="0s"/>)", false},
    {R"(<policy interval="3600001ms"/>)", false},
    {R"(<policy interval="3601s"/>)", false},
    {R"(<policy interval="61m"/>)", false},
    {R"(<policy interval="2h"/>)", false},
    {R"(<policy interval="5"/>)", false},
    {R"(<policy interval="5sec"/>)", false},
    {R"(<policy interval="1d"/>)", false},
    // priority, shadows
    {R"(<policy priority="0"/>)", true},
    {R"(<policy priority="1000"/>)", true},
    {R"(<policy priority="1001"/>)", false},
    {R"(<policy priority="-1"/>)", false},
    {R"(<policy priority="01"/>)", false},
    {R"(<policy priority="high"/>)", false},
    {R"(<policy shadows="1"/>)", true},
    {R"(<policy shadows="3"/>)", true},
    {R"(<policy shadows="0"/>)", false},
    {R"(<policy shadows="4"/>)", false},
    // zone
    {R"(<policy zone="prefer-other"/>)", true},
    {R"(<policy zone="any"/>)", true},
    {R"(<policy zone="other"/>)", false},
    {R"(<policy zone="ANY"/>)", false},
    // cost-cap
    {R"(<policy cost-cap="0"/>)", true},
    {R"(<policy cost-cap="12"/>)", true},
    {R"(<policy cost-cap="0.125"/>)", true},
    {R"(<policy cost-cap="-1"/>)", false},
    {R"(<policy cost-cap="1e3"/>)", false},
    {R"(<policy cost-cap=".5"/>)", false},
    {R"(<policy cost-cap="1."/>)", false},
    {R"(<policy cost-cap="1,5"/>)", false},
    {R"(<policy cost-cap="inf"/>)", false},
    {R"(<policy cost-cap="nan"/>)", false},
    // hook-failure
    {R"(<policy hook-failure="closed"/>)", true},
    {R"(<policy hook-failure="fail"/>)", false},
};

// `element` with the policy namespace declared as the default namespace.
inline std::string WithPolicyNamespace(std::string_view element) {
  std::string xml(element);
  xml.insert(std::string_view("<policy").size(), " xmlns=\"" + std::string(kPolicyNamespace) + "\"");
  return xml;
}

}  // namespace vs::policy::testing
