package dev.hybridinference.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.Secrets;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Hostile documents: each is refused with a {@link ConfigurationException} that names the key path and
 * what was expected, and no other exception type ever leaves the loader.
 */
class ConfigHardeningTest {
    private static final String ECHO = "providers:\n  a: {type: echo}\n";
    private static final String TWO = "providers:\n  a: {type: echo}\n  b: {type: echo}\n";

    private static ConfigurationException refusal(String yaml) {
        return refusal(yaml, Map.of());
    }

    private static ConfigurationException refusal(String yaml, Map<String, String> env) {
        try (InferenceClient c = InferenceClients.loader().env(env).load(yaml)) {
            throw new AssertionError("expected a ConfigurationException, loaded " + c.info());
        } catch (ConfigurationException e) {
            return e;
        }
    }

    private static String stackTrace(Throwable t) {
        StringWriter out = new StringWriter();
        t.printStackTrace(new PrintWriter(out));
        return out.toString();
    }

    private static String routing(String section) {
        return TWO + "routing:\n" + section;
    }

    private static String pricing(String section) {
        return "providers:\n  a: {type: echo, pricing: " + section + "}\n";
    }

    static Stream<Arguments> hostileDocuments() {
        return Stream.of(
                // structure
                Arguments.of("", "", "the document is empty"),
                Arguments.of("just text\n", "", "expected a mapping with a 'providers' key"),
                Arguments.of("[1, 2]\n", "", "expected a mapping with a 'providers' key"),
                Arguments.of("providers: ~\n", "providers", "is required"),
                Arguments.of("providers:\n  a: ~\n", "providers.a", "expected a mapping"),
                Arguments.of("providers:\n  a: [1, 2]\n", "providers.a", "expected a mapping"),
                Arguments.of("providers:\n  \"a b\\n\": {type: echo}\n", "providers.a b\n", "provider name"),
                Arguments.of(ECHO + "default: [a]\n", "default", "expected a single value"),
                Arguments.of(
                        "providers:\n  a: {type: echo, delay: 5s}\n  a: {type: echo}\n",
                        "providers.a",
                        "duplicate key"),
                Arguments.of(
                        "{\"providers\": {\"a\": {\"type\": \"echo\", \"type\": \"echo\"}}}",
                        "providers.a.type",
                        "duplicate key"),
                Arguments.of(ECHO + "---\n" + ECHO, "", "a second document starts at line 4"),
                Arguments.of(
                        "providers:\n  a: {type: echo, pricing: " + "[".repeat(80) + "]".repeat(80) + "}\n",
                        "providers.a.pricing" + "[0]".repeat(61),
                        "nested deeper than 64 levels"),
                Arguments.of(
                        "providers:\n  a: {type: echo, " + "k".repeat(300) + ": 1}\n",
                        "providers.a." + "k".repeat(32) + "...",
                        "key longer than 256"),
                Arguments.of(
                        "providers:\n  a: {type: echo, delay: !!binary aGVsbG8=}\n",
                        "providers.a.delay",
                        "unsupported value"),
                Arguments.of("? [a, b]\n: 1\n", "", "keys must be single values"),
                Arguments.of("providers:\n  a: {type: echo\n", "", "not valid YAML or JSON at line"),
                // aliases
                Arguments.of(
                        "providers:\n  a: {type: echo, delay: &d 5s}\n  b: {type: echo, delay: *d}\ndefault: a\n",
                        "providers.b.delay",
                        "YAML aliases (*d) are not supported"),
                Arguments.of(
                        "base: &base {type: echo}\nproviders:\n  a:\n    <<: *base\n",
                        "providers.a.<<",
                        "YAML aliases"),
                Arguments.of("providers:\n  *a : {type: echo}\n", "", "aliases are not supported"),
                // environment references
                Arguments.of("providers:\n  a: {type: echo, delay: \"${X\"}\n", "providers.a.delay", "unclosed ${"),
                Arguments.of(
                        "providers:\n  a: {type: echo, delay: \"${1X}\"}\n",
                        "providers.a.delay",
                        "not a valid environment variable name"),
                // durations
                Arguments.of(
                        "providers:\n  a: {type: echo, delay: 30d}\n",
                        "providers.a.delay",
                        "expected a duration from 0 to 24h, got \"30d\""),
                Arguments.of(
                        "providers:\n  a: {type: echo, delay: 99999999999999999999999d}\n",
                        "providers.a.delay",
                        "expected a duration such as"),
                Arguments.of(
                        "providers:\n  a: {type: echo, delay: P99999999999999999D}\n",
                        "providers.a.delay",
                        "expected a duration such as"),
                Arguments.of(
                        "providers:\n  a: {type: echo, delay: PT999999999999H}\n",
                        "providers.a.delay",
                        "expected a duration from 0 to 24h"),
                Arguments.of("providers:\n  a: {type: echo, delay: -5s}\n", "providers.a.delay", "expected a duration"),
                Arguments.of(
                        "providers:\n  a: {type: echo, delay: 0.0000001ns}\n",
                        "providers.a.delay",
                        "expected a duration"),
                Arguments.of(
                        "providers:\n  a: {type: echo, delay: [5s]}\n", "providers.a.delay", "expected a duration"),
                // prices
                Arguments.of(
                        pricing("{type: per-token, inputPerMillion: 1e999999999, outputPerMillion: 1}"),
                        "providers.a.pricing.inputPerMillion",
                        "of at most 1000000000"),
                Arguments.of(
                        pricing("{type: per-token, inputPerMillion: \"1e999999999\", outputPerMillion: 1}"),
                        "providers.a.pricing.inputPerMillion",
                        "of at most 1000000000"),
                Arguments.of(
                        pricing("{type: per-token, inputPerMillion: 1, outputPerMillion: 1e-999999999}"),
                        "providers.a.pricing.outputPerMillion",
                        "at most 18 decimal places"),
                Arguments.of(
                        pricing("{type: amortized, perHour: .inf}"),
                        "providers.a.pricing.perHour",
                        "expected a non-negative decimal number"),
                Arguments.of(
                        pricing("{type: amortized, perHour: .nan}"),
                        "providers.a.pricing.perHour",
                        "expected a non-negative decimal number"),
                Arguments.of(
                        pricing("{type: amortized, perHour: \"-0.5\"}"),
                        "providers.a.pricing.perHour",
                        "expected a non-negative decimal number"),
                Arguments.of(
                        pricing("{type: amortized, perHour: " + "9".repeat(200) + "}"),
                        "providers.a.pricing.perHour",
                        "expected a non-negative decimal number"),
                Arguments.of(
                        pricing("{type: per-instance-hour, perHour: 1, instances: 99999999999}"),
                        "providers.a.pricing.instances",
                        "expected a whole number of at most 100000"),
                Arguments.of(
                        pricing("{type: per-instance-hour, perHour: 1, instances: 2.5}"),
                        "providers.a.pricing.instances",
                        "expected a whole number from 1 to 100000"),
                Arguments.of(
                        pricing("{type: per-compute-time, perSecond: 1, billingIncrement: 2h}"),
                        "providers.a.pricing.billingIncrement",
                        "expected a duration from 0 to 1h"),
                // routing
                Arguments.of(
                        routing("  tiers: {t: [a]}\n  budgets: [{period: 500us, limit: 1}]\n"),
                        "routing.budgets[0].period",
                        "expected a duration from 1s to 366d"),
                Arguments.of(
                        routing("  budgets: [{period: 0s, limit: 1}]\n"),
                        "routing.budgets[0].period",
                        "expected a duration from 1s to 366d"),
                Arguments.of(
                        routing("  budgets: [{period: PT999999999999H, limit: 1}]\n"),
                        "routing.budgets[0].period",
                        "expected a duration from 1s to 366d"),
                Arguments.of(
                        routing("  budgets: [{period: 1d, limit: 1e999999999}]\n"),
                        "routing.budgets[0].limit",
                        "of at most 1000000000"),
                Arguments.of(
                        routing("  budgets: [{period: 1d, limit: 1, tags: {team: {a: b}}}]\n"),
                        "routing.budgets[0].tags.team",
                        "expected a single value"),
                Arguments.of(
                        routing("  members: {a: {keepWarmEvery: 1ms, idleTimeout: 5m}}\n"),
                        "routing.members.a.keepWarmEvery",
                        "expected a duration from 10s to 24h"),
                Arguments.of(
                        routing("  members: {a: {idleTimeout: 0s}}\n"),
                        "routing.members.a.idleTimeout",
                        "expected a duration from 1s to 24h"),
                Arguments.of(
                        routing("  members: {a: {maxInFlight: -1}}\n"),
                        "routing.members.a.maxInFlight",
                        "of at least 0"),
                Arguments.of(
                        routing("  members: {a: {contextLength: \"12.5\"}}\n"),
                        "routing.members.a.contextLength",
                        "expected a whole number"),
                Arguments.of(
                        routing("  members: {a: {maxWaiting: 1e999999999}}\n"),
                        "routing.members.a.maxWaiting",
                        "of at most 1000000"),
                Arguments.of(
                        routing("  circuitBreaker: {failureThreshold: 99999999999999999999}\n"),
                        "routing.circuitBreaker.failureThreshold",
                        "of at most 10000"),
                Arguments.of(
                        routing("  circuitBreaker: {cooldown: 30d}\n"),
                        "routing.circuitBreaker.cooldown",
                        "expected a duration from 0 to 24h"),
                Arguments.of(
                        routing("  retry: {maxAttempts: 1000000}\n"), "routing.retry.maxAttempts", "of at most 100"),
                Arguments.of(routing("  retry: {multiplier: 1e999999999}\n"), "routing.retry.multiplier", "of at most"),
                Arguments.of(
                        routing("  retry: {maxBackoff: 2h}\n"),
                        "routing.retry.maxBackoff",
                        "expected a duration from 0 to 1h"),
                Arguments.of(
                        routing("  spillover: {primary: a, waitForSlot: 5h}\n"),
                        "routing.spillover.waitForSlot",
                        "expected a duration from 0 to 1h"),
                Arguments.of(
                        routing("  tiers: {t: [a]}\n  rules: [{maxPromptTokens: 3000000000, tier: t}]\n"),
                        "routing.rules[0].maxPromptTokens",
                        "of at most 100000000"),
                Arguments.of(routing("  rules: {a: b}\n"), "routing.rules", "expected a list"),
                Arguments.of(
                        routing("  tiers: {t: [a]}\n  rules: [{tag: {feature: [x]}, tier: t}]\n"),
                        "routing.rules[0].tag.feature",
                        "expected a single value"),
                Arguments.of(routing("  costAware: maybe\n"), "routing.costAware", "expected true or false"),
                Arguments.of(routing("  id: \"two\\nlines\"\n"), "routing.id", "expected a name"));
    }

    @ParameterizedTest(name = "[{index}] {1}")
    @MethodSource("hostileDocuments")
    void everyHostileDocumentIsAConfigurationErrorWithItsKeyPath(String yaml, String path, String expected) {
        ConfigurationException e = refusal(yaml);
        assertThat(e.path()).as(e.getMessage()).isEqualTo(path);
        assertThat(e.getMessage()).startsWith(path.isEmpty() ? "" : path + ": ").contains(expected);
    }

    @Test
    void theTableCoversAtLeastThirtyCases() {
        assertThat(hostileDocuments().count()).isGreaterThanOrEqualTo(30);
    }

    // ---- 1. aliases ---------------------------------------------------------------------------

    @Test
    void anAliasIsRefusedNamingTheKeyRatherThanReadAsTheAnchorName() {
        ConfigurationException e =
                refusal("keys:\n  main: &k sk-anchored-123456\n" + "providers:\n  a: {type: echo, apiKey: *k}\n");
        assertThat(e.getMessage())
                .isEqualTo("providers.a.apiKey: YAML aliases (*k) are not supported: write the value out,"
                        + " or share it through an environment variable (${NAME})");
    }

    @Test
    void aBillionLaughsDocumentIsRefusedAtTheFirstAlias() {
        StringBuilder doc = new StringBuilder("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (char c = 'b'; c <= 'j'; c++) {
            String prev = "*" + (char) (c - 1);
            doc.append(c)
                    .append(": &")
                    .append(c)
                    .append(" [")
                    .append(String.join(", ", List.of(prev, prev, prev)))
                    .append(", ")
                    .append(String.join(", ", List.of(prev, prev, prev, prev, prev, prev)))
                    .append("]\n");
        }
        doc.append(ECHO);
        assertThat(refusal(doc.toString()).getMessage()).startsWith("b[0]: YAML aliases (*a) are not supported");
    }

    // ---- 2. duplicates and several documents ---------------------------------------------------

    @Test
    void aDuplicateKeyIsRefusedWithItsPath() {
        assertThat(refusal("providers:\n  main:\n    type: echo\n    delay: 1s\n    delay: 2s\n")
                        .getMessage())
                .isEqualTo("providers.main.delay: duplicate key (line 5): each key may appear once in a mapping");
    }

    @Test
    void aSecondDocumentIsRefused() {
        assertThat(refusal(ECHO + "---\nproviders:\n  b: {type: echo}\n").getMessage())
                .startsWith("a second document starts at line 4: expected exactly one document");
        assertThat(refusal(ECHO + "---\n").getMessage()).startsWith("a second document");
        try (InferenceClient c = InferenceClients.loader().load("---\n" + ECHO + "...\n")) {
            assertThat(c.info().id()).isEqualTo("a");
        }
    }

    // ---- 3. size and depth --------------------------------------------------------------------

    @Test
    void aDocumentOverOneMebibyteIsRefusedBeforeParsing() {
        String huge = ECHO + "# " + "x".repeat(16 << 20) + "\n";
        assertThat(refusal(huge).getMessage())
                .isEqualTo("the document is " + huge.length() + " characters long, over the limit of 1048576"
                        + " characters (1 MiB); raise it with InferenceClients.loader().maxDocumentSize(...)");
        try (InferenceClient c = InferenceClients.loader()
                .maxDocumentSize(2 << 20)
                .load(ECHO + ("# " + "x".repeat(98) + "\n").repeat(15_000))) {
            assertThat(c.info().id()).isEqualTo("a");
        }
    }

    @Test
    void aLargeFileIsRefusedAfterReadingJustPastTheLimit(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("big.yaml");
        Files.writeString(file, ECHO + "# " + "x".repeat(4 << 20) + "\n");
        assertThatThrownBy(() -> InferenceClients.fromConfig(file))
                .isInstanceOf(ConfigurationException.class)
                .hasMessageStartingWith("the file " + file + " is longer than 1048576 characters, over the limit");
    }

    @Test
    void aFileThatIsNotUtf8IsAConfigurationError(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("latin1.yaml");
        Files.write(file, new byte[] {'a', ':', ' ', (byte) 0xff, (byte) 0xfe, '\n'});
        assertThatThrownBy(() -> InferenceClients.fromConfig(file))
                .isInstanceOf(ConfigurationException.class)
                .hasMessage("configuration file " + file + " is not UTF-8 text");
    }

    @Test
    void nestingDeeperThanSixtyFourLevelsIsRefusedWithThePath() {
        String deep =
                "providers:\n  a:\n    type: echo\n    pricing: " + "{k: ".repeat(70) + "1" + "}".repeat(70) + "\n";
        ConfigurationException e = refusal(deep);
        assertThat(e.getMessage()).startsWith("providers.a.pricing" + ".k".repeat(61) + ": nested deeper than 64");
    }

    // ---- 4. values that cannot work -----------------------------------------------------------

    @Test
    void aBudgetPeriodUnderOneSecondIsRefusedAndOneSecondRecordsEveryCall() {
        assertThat(refusal(routing("  budgets: [{period: 0.5ms, limit: 1}]\n")).getMessage())
                .isEqualTo("routing.budgets[0].period: expected a duration from 1s to 366d, got \"0.5ms\"");
        CostLedger ledger = new CostLedger();
        try (InferenceClient c =
                InferenceClients.loader().ledger(ledger).load(routing("  budgets: [{period: 1s, limit: 100}]\n"))) {
            for (int i = 0; i < 3; i++) {
                c.chat(ChatRequest.of("hello"));
            }
        }
        assertThat(ledger.totals().calls()).isEqualTo(3);
    }

    @Test
    void aPriceOfOneE999999999IsRefused() {
        assertThat(refusal(pricing("{type: per-instance-hour, perHour: 1e999999999}"))
                        .getMessage())
                .isEqualTo("providers.a.pricing.perHour: expected a non-negative decimal number of at most 1000000000,"
                        + " got 1E+999999999");
        try (InferenceClient c = InferenceClients.loader()
                .load(pricing("{type: per-token, inputPerMillion: 0.000000000001, outputPerMillion: 999999999}"))) {
            assertThat(((Pricing.PerToken) c.info().pricing()).inputPerMillion())
                    .isEqualByComparingTo("0.000000000001");
        }
    }

    @Test
    void aThirtyDayTimeoutIsRefusedByTheDefaultDurationRange() {
        assertThat(refusal("providers:\n  a: {type: echo, delay: P30D}\n").getMessage())
                .isEqualTo("providers.a.delay: expected a duration from 0 to 24h, got \"P30D\"");
    }

    // ---- 5. minimum intervals -----------------------------------------------------------------

    @Test
    void keepWarmMoreOftenThanEveryTenSecondsIsRefused() {
        assertThat(refusal(routing("  members: {a: {idleTimeout: 5m, keepWarmEvery: 1ms}}\n"))
                        .getMessage())
                .isEqualTo("routing.members.a.keepWarmEvery: expected a duration from 10s to 24h, got \"1ms\"");
        try (InferenceClient c =
                InferenceClients.loader().load(routing("  members: {a: {idleTimeout: 5m, keepWarmEvery: 10s}}\n"))) {
            assertThat(((HybridClient) c).members().get("a").options().keepWarmEvery())
                    .isEqualTo(Duration.ofSeconds(10));
        }
    }

    // ---- 6. secrets ---------------------------------------------------------------------------

    @Test
    void aSyntaxErrorOnTheApiKeyLineNeverQuotesTheKey() {
        for (String yaml : List.of(
                "providers:\n  a:\n    type: echo\n    apiKey: sk-SECRET-123456 {\n    x: [\n",
                "providers:\n  a:\n    type: echo\n    apiKey: \"sk-SECRET-123456\n  b: 1\n",
                "providers:\n  a:\n    type: echo\n    apiKey: sk-SECRET-123456\n   bad: [\n",
                "{\"providers\": {\"a\": {\"apiKey\": \"sk-SECRET-123456\" \"type\": \"echo\"}}}")) {
            ConfigurationException e = refusal(yaml);
            assertThat(e.getMessage()).startsWith("not valid YAML or JSON at line");
            assertThat(stackTrace(e)).doesNotContain("sk-SECRET-123456");
            for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
                assertThat(String.valueOf(c.getMessage())).doesNotContain("sk-SECRET-123456");
            }
        }
    }

    @Test
    void theSubstitutedValueOfASecretKeyIsRegistered() {
        refusal("providers:\n  a: {type: echo, apiKey: \"${KEY}\"}\n", Map.of("KEY", "sk-from-env-98765"));
        assertThat(Secrets.containsRegistered("sk-from-env-98765")).isTrue();
        assertThat(Secrets.containsRegistered("${KEY}")).isFalse();
    }

    @Test
    void aModeWordOrAFlowMappingUnderASecretKeyIsNotRegistered() {
        // `credentials: default` names the platform's default chain; `{profile: ...}` is judged by its keys.
        refusal(
                "providers:\n  a: {type: echo, credentials: default}\n  b: {type: echo, credentials: {profile: dev-prof}}\n"
                        + "  c: {type: echo, credentials: {secret: s3cr3t-in-flow-4242}}\n");
        assertThat(Secrets.containsRegistered("default")).isFalse();
        assertThat(Secrets.containsRegistered("{profile")).isFalse();
        assertThat(Secrets.containsRegistered("s3cr3t-in-flow-4242")).isTrue();
        // Before parsing (a syntax error), the first item of a flow list under a secret key still counts.
        refusal("providers:\n  a: {type: echo, apiKey: [sk-listed-31337, x}\n");
        assertThat(Secrets.containsRegistered("sk-listed-31337")).isTrue();
    }

    @Test
    void passwordsInUrlsAreMaskedInErrors() {
        ConfigurationException e = refusal(TWO + "default: \"https://admin:s3cr3t-pw@example.com/v1\"\n");
        assertThat(e.getMessage())
                .startsWith("default: names \"https://[REDACTED]@example.com/v1\", which is not a provider")
                .doesNotContain("s3cr3t-pw");
        assertThat(new ConfigurationException("p", "bad url http://user:pw-not-registered@h:1").getMessage())
                .isEqualTo("p: bad url http://[REDACTED]@h:1");
    }

    @Test
    void secretKeyNamesAreRecognisedButTokenCountsAreNot() {
        for (String key : List.of(
                "apiKey",
                "api_key",
                "x-api-key",
                "key",
                "token",
                "accessToken",
                "password",
                "clientSecret",
                "credentials",
                "connectionString",
                "AUTHORIZATION")) {
            assertThat(ConfigNode.isSecretKey(key)).as(key).isTrue();
        }
        for (String key : List.of("maxTokens", "typicalOutputTokens", "keepWarmEvery", "model", "baseUrl")) {
            assertThat(ConfigNode.isSecretKey(key)).as(key).isFalse();
        }
    }

    // ---- 7. nothing but ConfigurationException leaves the loader ------------------------------

    @Test
    void aFactoryThatThrowsAnythingGivesAConfigurationErrorAtItsSection(@TempDir Path dir) throws Exception {
        Path services = dir.resolve("META-INF/services");
        Files.createDirectories(services);
        Files.writeString(
                services.resolve("dev.hybridinference.core.spi.InferenceProviderFactory"),
                ExplodingProviderFactory.class.getName() + "\n");
        try (URLClassLoader loader =
                new URLClassLoader(new URL[] {dir.toUri().toURL()}, getClass().getClassLoader())) {
            Map<String, String> expected = new LinkedHashMap<>();
            expected.put("npe", "providers.x: could not be loaded (NullPointerException: no model for key");
            expected.put("arithmetic", "providers.x: could not be loaded (ArithmeticException: long overflow)");
            expected.put("class-cast", "providers.x: could not be loaded (ClassCastException: ");
            expected.put("number-format", "providers.x: could not be loaded (NumberFormatException: ");
            expected.put("illegal-argument", "providers.x: bad url http://[REDACTED]@host with key [REDACTED]");
            expected.put("null-client", "providers.x: the factory of type \"explode\" built no client");
            for (Map.Entry<String, String> m : expected.entrySet()) {
                String yaml =
                        "providers:\n  x: {type: explode, mode: " + m.getKey() + ", apiKey: sk-exploding-777777}\n";
                assertThatThrownBy(() ->
                                InferenceClients.loader().classLoader(loader).load(yaml))
                        .as(m.getKey())
                        .isInstanceOf(ConfigurationException.class)
                        .hasMessageStartingWith(m.getValue())
                        .satisfies(e -> assertThat(stackTrace(e))
                                .doesNotContain("sk-exploding-777777")
                                .doesNotContain("hunter2-Pass"));
            }
        }
    }

    @Test
    void oddMapsAreRefusedWithThePath() {
        Map<String, Object> cyclic = new HashMap<>();
        cyclic.put("self", cyclic);
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("providers", Map.of("a", Map.of("type", "echo", "pricing", cyclic)));
        assertThatThrownBy(() -> InferenceClients.fromConfig(doc))
                .isInstanceOf(ConfigurationException.class)
                .hasMessageStartingWith("providers.a.pricing.self.self")
                .hasMessageContaining("nested deeper than 64 levels");

        Map<Object, Object> numericKeys = new LinkedHashMap<>();
        numericKeys.put(new Object(), 1);
        assertThatThrownBy(() -> InferenceClients.fromConfig(
                        Map.of("providers", Map.of("a", Map.of("type", "echo", "pricing", numericKeys)))))
                .isInstanceOf(ConfigurationException.class)
                .hasMessageStartingWith("providers.a.pricing: expected keys that are strings");
        assertThatThrownBy(() -> InferenceClients.fromConfig(
                        Map.of("providers", Map.of("a", Map.of("type", "echo", "delay", new Object())))))
                .isInstanceOf(ConfigurationException.class)
                .hasMessageStartingWith("providers.a.delay: unsupported value of type java.lang.Object");
        assertThatThrownBy(() -> InferenceClients.fromConfig(Map.of(
                        "providers",
                        Map.of(
                                "a",
                                Map.of(
                                        "type",
                                        "echo",
                                        "pricing",
                                        Map.of("type", "amortized", "perHour", Double.NaN))))))
                .isInstanceOf(ConfigurationException.class)
                .hasMessage("providers.a.pricing.perHour: expected a non-negative decimal number, got \"NaN\"");
        assertThatThrownBy(() -> InferenceClients.fromConfig((Map<String, ?>) null))
                .isInstanceOf(ConfigurationException.class);
        assertThatThrownBy(() -> InferenceClients.fromConfig((String) null)).isInstanceOf(ConfigurationException.class);
    }

    @Test
    void tooManyProvidersAreRefused() {
        StringBuilder doc = new StringBuilder("providers:\n");
        for (int i = 0; i <= InferenceClients.MAX_PROVIDERS; i++) {
            doc.append("  p").append(i).append(": {type: echo}\n");
        }
        assertThat(refusal(doc.toString()).getMessage())
                .isEqualTo("providers: expected at most 256 providers, got 257");
    }

    // ---- the getters' ranges ------------------------------------------------------------------

    @Test
    void gettersStateTheirRanges() {
        List<Object> nothing = new ArrayList<>();
        ConfigNode n = ConfigNode.of(
                "p", Map.of("scrape", "0s", "fast", "50ms", "n", 7, "price", new BigDecimal("0.25"), "list", nothing));
        assertThat(n.durationOrOff("scrape", Duration.ofMillis(100), Duration.ofHours(1)))
                .contains(Duration.ZERO);
        assertThatThrownBy(() -> n.durationOrOff("fast", Duration.ofMillis(100), Duration.ofHours(1)))
                .hasMessage("p.fast: expected 0 (off) or a duration from 100ms to 1h, got \"50ms\"");
        assertThat(n.integer("n", 1, 10)).contains(7);
        assertThatThrownBy(() -> n.integer("n", 1, 5)).hasMessage("p.n: expected a whole number of at most 5, got 7");
        assertThat(n.decimal("price", BigDecimal.ZERO, BigDecimal.ONE)).contains(new BigDecimal("0.25"));
        assertThat(n.list("list")).isEmpty();
        assertThat(ConfigNode.format(Duration.ofDays(366))).isEqualTo("366d");
        assertThat(ConfigNode.format(Duration.ofMillis(1500))).isEqualTo("1500ms");
    }
}
