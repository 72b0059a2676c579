package dev.hybridinference.core.routing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ClientInfo.Capabilities;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.FlakyProviderFactory.FlakyClient;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.ToolDefinition;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Capabilities and model aliases from configuration: in a provider's own section (read by the core for
 * every provider type) and under {@code routing.members}, which wins.
 */
class MemberOptionsConfigTest {
    private static final String YAML = "providers:\n"
            + "  local:\n"
            + "    type: flaky\n"
            + "    served: [qwen]\n"
            + "    capabilities: {tools: false, contextLength: 100}\n"
            + "    modelAliases: {small: qwen}\n"
            + "  remote:\n"
            + "    type: flaky\n"
            + "    served: [llama-70b, llama-8b]\n"
            + "    modelAliases: {big: llama-70b, huge: llama-70b}\n"
            + "routing:\n"
            + "  members:\n"
            + "    local: {capabilities: {contextLength: 4096}}\n"
            + "    remote: {modelAliases: {big: llama-8b}}\n"
            + "  tiers: {small: [local, remote], large: [remote]}\n"
            + "  rules: [{model: \"big\", tier: large}, {model: \"huge\", tier: large}]\n";

    private static InferenceClient load(String yaml) {
        return InferenceClients.loader().env(Map.of()).load(yaml);
    }

    private static String error(String yaml) {
        try (InferenceClient c = load(yaml)) {
            throw new AssertionError("expected a ConfigurationException, got " + c.info());
        } catch (ConfigurationException e) {
            return e.getMessage();
        }
    }

    @Test
    void routingMembersWinOverTheProvidersSectionWhichWinsOverTheProvider() {
        try (HybridClient h = (HybridClient) load(YAML)) {
            // The provider says: everything. Its section says: no tools, 100 tokens. Routing says: 4096.
            assertThat(h.members().get("local").capabilities())
                    .isEqualTo(new Capabilities(false, true, true, true, 4096));
            assertThat(h.members().get("remote").capabilities()).isEqualTo(Capabilities.DEFAULTS);
            assertThat(h.members().get("remote").options().modelAliases())
                    .isEqualTo(Map.of("big", "llama-8b", "huge", "llama-70b"));

            ChatResponse tools = h.chat(ChatRequest.builder()
                    .user("x")
                    .addTool(new ToolDefinition("f", "", "{}"))
                    .build());
            assertThat(tools.receipt().providerId()).isEqualTo("remote");
            assertThat(tools.receipt().route()).contains("skipped local: no tool calling");

            FlakyClient remote = h.member("remote", FlakyClient.class);
            assertThat(h.chat(ChatRequest.builder().model("big").user("x").build())
                            .receipt()
                            .model())
                    .isEqualTo("llama-8b");
            assertThat(h.chat(ChatRequest.builder().model("huge").user("x").build())
                            .receipt()
                            .model())
                    .isEqualTo("llama-70b");
            // What the provider got: no model for the tool call, then the served names.
            assertThat(remote.requests())
                    .extracting(r -> r.model().orElse("-"))
                    .containsExactly("-", "llama-8b", "llama-70b");
            FlakyClient local = h.member("local", FlakyClient.class);
            h.chat(ChatRequest.builder().model("small").user("x").build());
            assertThat(local.requests().get(0).model()).contains("qwen");
        }
    }

    @Test
    void theCoreKeysOfAProviderSectionAreCheckedWithTheirPathsForEveryProvider() {
        assertThat(error("providers:\n  a: {type: flaky, capabilities: {tols: false}}\n"))
                .startsWith("providers.a.capabilities.tols: unknown key (did you mean 'tools'?)");
        assertThat(error("providers:\n  a: {type: flaky, capabilities: {contextLength: 0}}\n"))
                .startsWith("providers.a.capabilities.contextLength:");
        assertThat(error("providers:\n  a: {type: flaky, modelAliases: [big]}\n"))
                .startsWith("providers.a.modelAliases: expected a mapping");
        assertThat(error("providers:\n  a: {type: flaky, modelAliases: {big: \" \"}}\n"))
                .startsWith("providers.a.modelAliases.big: expected the served model name");
        assertThat(error("providers:\n  a: {type: flaky}\nrouting:\n  members:\n"
                        + "    a: {contextLength: 5, capabilities: {contextLength: 6}}\n"))
                .isEqualTo("routing.members.a.contextLength: set contextLength once: here or under capabilities,"
                        + " not both");
        assertThat(error("providers:\n  a: {type: flaky}\nrouting:\n  members:\n    a: {capabilities: {tool: true}}\n"))
                .startsWith("routing.members.a.capabilities.tool: unknown key (did you mean 'tools'?)");
    }
}
