package dev.hybridinference.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.cost.CostLedger;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InferenceClientsTest {
    private static InferenceClient load(String yaml, Map<String, String> env) {
        return InferenceClients.loader().env(env).load(yaml);
    }

    private static ConfigurationException configError(String yaml) {
        return configError(yaml, Map.of());
    }

    private static ConfigurationException configError(String yaml, Map<String, String> env) {
        try {
            load(yaml, env).close();
        } catch (ConfigurationException e) {
            return e;
        }
        throw new AssertionError("expected a ConfigurationException");
    }

    @Test
    void loadsTheOnlyProviderWithItsPricing() {
        try (InferenceClient c = load(
                "providers:\n  local:\n    type: echo\n    pricing: {type: per-token, inputPerMillion: 1, outputPerMillion: 2}\n",
                Map.of())) {
            assertThat(c.info().id()).isEqualTo("local");
            assertThat(c.info().pricing()).isInstanceOf(Pricing.PerToken.class);
            ChatResponse r = c.chat(ChatRequest.of("one two three"));
            assertThat(r.text()).isEqualTo("one two three");
            // 3 in + 3 out at $1/$2 per million
            assertThat(r.receipt().cost()).isEqualByComparingTo("0.000009");
        }
    }

    @Test
    void jsonDocumentsAndMapsWorkToo() {
        try (InferenceClient c = load("{\"providers\":{\"a\":{\"type\":\"echo\"}}}", Map.of())) {
            assertThat(c.info().id()).isEqualTo("a");
        }
        try (InferenceClient c =
                InferenceClients.fromConfig(Map.of("providers", Map.of("b", Map.of("type", "echo"))))) {
            assertThat(c.info().id()).isEqualTo("b");
        }
    }

    @Test
    void fileLoadingReadsYaml(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("c.yaml");
        Files.writeString(file, "providers:\n  f:\n    type: echo\n");
        try (InferenceClient c = InferenceClients.fromConfig(file)) {
            assertThat(c.info().id()).isEqualTo("f");
        }
        assertThatThrownBy(() -> InferenceClients.fromConfig(dir.resolve("missing.yaml")))
                .isInstanceOf(ConfigurationException.class)
                .hasMessageContaining("cannot read configuration file");
    }

    @Test
    void environmentReferencesAreResolvedWithDefaults() {
        String yaml = "providers:\n  x:\n    type: echo\n"
                + "    pricing: {type: per-instance-hour, perHour: \"${RATE}\", instances: \"${N:-3}\"}\n";
        try (InferenceClient c = load(yaml, Map.of("RATE", "2.5"))) {
            assertThat(c.info().pricing()).isEqualTo(new Pricing.PerInstanceHour(new java.math.BigDecimal("2.5"), 3));
        }
        assertThat(configError(yaml).getMessage())
                .isEqualTo("providers.x.pricing.perHour: environment variable RATE is not set"
                        + " (write ${RATE:-default} to give a default)");
    }

    @Test
    void severalProvidersNeedADefault() {
        String two = "providers:\n  a: {type: echo}\n  b: {type: echo}\n";
        assertThat(configError(two).getMessage())
                .isEqualTo("default: is required with several providers and no routing section: name one of a, b");
        try (InferenceClient c = load(two + "default: b\n", Map.of())) {
            assertThat(c.info().id()).isEqualTo("b");
        }
        assertThat(configError(two + "default: c\n").getMessage())
                .startsWith("default: names \"c\", which is not a provider");
    }

    @Test
    void errorsNameTheKeyPathAndWhatWasExpected() {
        assertThat(configError("providers:\n  a: {type: vlm}\n").getMessage())
                .startsWith("providers.a.type: unknown provider type \"vlm\"; types on the classpath: echo");
        assertThat(configError("providers:\n  a: {typ: echo}\n").getMessage())
                .isEqualTo("providers.a.type: is required: expected a value");
        assertThat(configError("providers:\n  a: {type: echo, delai: 5s}\n").getMessage())
                .startsWith("providers.a.delai: unknown key (did you mean 'delay'?)");
        assertThat(configError("providers:\n  a: {type: echo, delay: soon}\n").getMessage())
                .isEqualTo("providers.a.delay: expected a duration such as 250ms, 5s, 2m or PT1H, got \"soon\"");
        assertThat(configError("providers:\n  a: {type: echo, pricing: {type: per-token, inputPerMillion: -1,"
                                + " outputPerMillion: 1}}\n")
                        .getMessage())
                .isEqualTo("providers.a.pricing.inputPerMillion: expected a non-negative decimal number, got -1");
        assertThat(configError("providers:\n  a: {type: echo, pricing: {type: per-hour}}\n")
                        .getMessage())
                .startsWith("providers.a.pricing.type: unknown pricing type \"per-hour\"");
        assertThat(configError("providers:\n  a: {type: echo, pricing: {type: per-token, outputPerMillion: 1}}\n")
                        .getMessage())
                .isEqualTo("providers.a.pricing.inputPerMillion: is required: expected USD per million input tokens");
        assertThat(configError("provider:\n  a: {type: echo}\n").getMessage())
                .startsWith("provider: unknown key (did you mean 'providers'?)");
        assertThat(configError("providers: {}\n").getMessage()).isEqualTo("providers: expected at least one provider");
        assertThat(configError("providers: [1, 2]\n").getMessage())
                .isEqualTo("providers: expected a mapping of keys to values, got a list");
        assertThat(configError("providers:\n  a: {type: echo\n").getMessage())
                .startsWith("not valid YAML or JSON at line");
    }

    @Test
    void secretLookingValuesAreNotEchoedInErrors() {
        ConfigurationException e = configError("providers:\n  a: {type: echo, apiKey: sk-very-secret}\n");
        assertThat(e.getMessage()).doesNotContain("sk-very-secret").startsWith("providers.a.apiKey: unknown key");
        var node = dev.hybridinference.core.spi.ConfigNode.of("p", Map.of("apiKey", "sk-1"));
        assertThat(node.error("apiKey", "expected something").getMessage()).isEqualTo("p.apiKey: expected something");
    }

    @Test
    void twoFactoriesOfOneTypeAreAConflictNamingBoth(@TempDir Path dir) throws Exception {
        Path services = dir.resolve("META-INF/services");
        Files.createDirectories(services);
        Files.writeString(
                services.resolve("dev.hybridinference.core.spi.InferenceProviderFactory"),
                DuplicateEchoFactory.class.getName() + "\n");
        try (URLClassLoader loader =
                new URLClassLoader(new URL[] {dir.toUri().toURL()}, getClass().getClassLoader())) {
            assertThatThrownBy(
                            () -> InferenceClients.loader().classLoader(loader).load("providers:\n  a: {type: echo}\n"))
                    .isInstanceOf(ConfigurationException.class)
                    .hasMessageContaining("two provider factories claim the type \"echo\"")
                    .hasMessageContaining(EchoProviderFactory.class.getName())
                    .hasMessageContaining(DuplicateEchoFactory.class.getName());
        }
    }

    @Test
    void theLedgerGetsEveryReceipt() {
        CostLedger ledger = new CostLedger();
        try (InferenceClient c = InferenceClients.loader()
                .ledger(ledger)
                .load(
                        "providers:\n  a: {type: echo, pricing: {type: per-token, inputPerMillion: 1, outputPerMillion: 1}}\n")) {
            c.chat(ChatRequest.builder()
                    .user("a b")
                    .options(RequestOptions.builder().tag("tenant", "acme").build())
                    .build());
            try (ChatStream s = c.stream(ChatRequest.of("x y z"))) {
                s.forEachRemaining(chunk -> {});
            }
        }
        assertThat(ledger.totals().calls()).isEqualTo(2);
        assertThat(ledger.totals().tag("tenant", "acme")).isEqualByComparingTo("0.000004");
        assertThat(List.copyOf(ledger.totals().byProvider().keySet())).containsExactly("a");
    }
}
