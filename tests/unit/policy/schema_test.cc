// docs/schema/policy.rng and the parser judge the same policy elements the same way.
#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "shadowd/policy/domain_xml.h"
#include "tests/unit/policy/policy_cases.h"

namespace vs::policy {
namespace {

// Collects RelaxNG diagnostics instead of letting libxml2 print them.
void CollectError(void* messages, xmlErrorPtr error) {
  if (error != nullptr && error->message != nullptr) {
    static_cast<std::vector<std::string>*>(messages)->push_back(error->message);
  }
}

struct SchemaDeleter {
  void operator()(xmlRelaxNG* schema) const { xmlRelaxNGFree(schema); }
};
struct DocDeleter {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};

class PolicySchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    xmlRelaxNGParserCtxt* parser = xmlRelaxNGNewParserCtxt(VS_POLICY_SCHEMA_PATH);
    ASSERT_NE(parser, nullptr);
    xmlRelaxNGSetParserStructuredErrors(parser, &CollectError, &messages_);
    schema_.reset(xmlRelaxNGParse(parser));
    xmlRelaxNGFreeParserCtxt(parser);
    ASSERT_NE(schema_, nullptr) << VS_POLICY_SCHEMA_PATH << ": "
                                << (messages_.empty() ? "does not compile" : messages_.front());
    messages_.clear();
  }

  // True if `xml` (a standalone policy element) is valid under the schema.
  bool SchemaAccepts(const std::string& xml) {
    std::unique_ptr<xmlDoc, DocDeleter> doc(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "policy.xml",
                                                          "UTF-8", XML_PARSE_NONET | XML_PARSE_NOERROR |
                                                                       XML_PARSE_NOWARNING));
    EXPECT_NE(doc, nullptr) << "test case is not well-formed: " << xml;
    if (!doc) return false;
    xmlRelaxNGValidCtxt* validator = xmlRelaxNGNewValidCtxt(schema_.get());
    xmlRelaxNGSetValidStructuredErrors(validator, &CollectError, &messages_);
    const int result = xmlRelaxNGValidateDoc(validator, doc.get());
    xmlRelaxNGFreeValidCtxt(validator);
    EXPECT_GE(result, 0) << "validator failed internally on " << xml;
    return result == 0;
  }

  std::unique_ptr<xmlRelaxNG, SchemaDeleter> schema_;
  std::vector<std::string> messages_;
};

// The parser's verdict on `element` placed in a domain's <metadata>.
bool ParserAccepts(const std::string& element) {
  const std::string xml = "<domain><name>vm</name><uuid>u</uuid><memory>1048576</memory><metadata>" + element +
                          "</metadata></domain>";
  StatusOr<DomainFacts> facts = ParseDomain(xml);
  EXPECT_TRUE(facts.ok()) << facts.status().ToString();
  if (!facts.ok()) return false;
  PolicyResult result = ParsePolicy(*facts);
  EXPECT_TRUE(result.policy.ok() ? result.policy->has_value() : true) << "a policy element read as untagged";
  return result.policy.ok();
}

TEST_F(PolicySchemaTest, SchemaAndParserAgreeOnEveryCase) {
  for (const testing::PolicyCase& c : testing::kPolicyCases) {
    const std::string element = testing::WithPolicyNamespace(c.element);
    EXPECT_EQ(SchemaAccepts(element), c.valid) << "schema on " << element;
    EXPECT_EQ(ParserAccepts(element), c.valid) << "parser on " << element;
  }
}

TEST_F(PolicySchemaTest, RenderedPoliciesAreValid) {
  Policy policy;
  EXPECT_TRUE(SchemaAccepts(testing::WithPolicyNamespace(RenderPolicy(policy))));
  policy.memory = ResourceSpec::Absolute(65537);
  policy.interval = std::chrono::milliseconds(1500);
  policy.cost_cap_per_hour = 0.75;
  policy.hook_failure = HookFailureMode::kClosed;
  EXPECT_TRUE(SchemaAccepts(testing::WithPolicyNamespace(RenderPolicy(policy))));
}

TEST_F(PolicySchemaTest, ElementOutsideTheNamespaceIsInvalid) {
  EXPECT_FALSE(SchemaAccepts("<policy/>"));
  EXPECT_FALSE(SchemaAccepts("<policy xmlns='http://virt-shadow.org/xmlns/policy/2.0'/>"));
}

}  // namespace
}  // namespace vs::policy
