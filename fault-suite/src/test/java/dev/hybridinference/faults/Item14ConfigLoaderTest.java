package dev.hybridinference.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Item 14: documents the loader must refuse, each with a {@link ConfigurationException} (no other type,
 * no hang) whose message names the key path when the problem has one: YAML aliases (which the parser
 * does not expand, so a value silently becomes the alias's name), duplicate keys (the last silently
 * won), a second document (silently ignored), a 16 MB document, a budget period of a nanosecond,
 * durations too long for the HTTP client or the scheduler, a price of {@code 1e999999999}, nesting 20000
 * deep, and a keep-warm ping every millisecond.
 */
@FaultItem(value = 14, title = "Config loader")
class Item14ConfigLoaderTest extends FaultTestBase {
    private static final String BASE = "providers:\n  main:\n    type: vllm\n    baseUrl: http://127.0.0.1:1\n"
            + "    model: m\n    scrapeInterval: 0s\n";
    private static final String ROUTED = "providers:\n  a:\n    type: vllm\n    baseUrl: http://127.0.0.1:1\n"
            + "    model: m\n    scrapeInterval: 0s\nrouting:\n  tiers: {t: [a]}\n  defaultTier: t\n";

    private record Case(String name, String document, String path) {}

    @Test
    void hostileDocumentsAreRefusedWithTheKeyPath() {
        List<Case> cases = new ArrayList<>();
        cases.add(new Case(
                "a scalar alias",
                "providers:\n  main:\n    type: vllm\n    baseUrl: &u http://127.0.0.1:1\n    model: *u\n"
                        + "    scrapeInterval: 0s\n",
                "providers.main.model"));
        cases.add(new Case(
                "a mapping alias",
                "providers:\n  main: &m\n    type: vllm\n    baseUrl: http://127.0.0.1:1\n    model: m\n"
                        + "    scrapeInterval: 0s\n  other: *m\ndefault: main\n",
                "providers.other"));
        cases.add(new Case(
                "a duplicate key",
                "providers:\n  main:\n    type: vllm\n    baseUrl: http://127.0.0.1:1\n    baseUrl: http://127.0.0.1:2\n"
                        + "    model: m\n    scrapeInterval: 0s\n",
                "providers.main.baseUrl"));
        cases.add(new Case(
                "a second document",
                BASE + "---\nproviders:\n  other:\n    type: vllm\n    baseUrl: http://127.0.0.1:3\n",
                null));
        cases.add(new Case("a 16 MB document", BASE + ("# " + "c".repeat(1022) + "\n").repeat(16 * 1024), null));
        cases.add(new Case(
                "a budget period of 1ns",
                ROUTED + "  budgets:\n    - {name: b, period: 1ns, limit: 1}\n",
                "routing.budgets[0].period"));
        cases.add(new Case(
                "connectTimeout: 3650d", BASE + "    connectTimeout: 3650d\n", "providers.main.connectTimeout"));
        cases.add(new Case(
                "scrapeInterval: P200000D",
                BASE.replace("scrapeInterval: 0s", "scrapeInterval: P200000D"),
                "providers.main.scrapeInterval"));
        cases.add(
                new Case("callTimeout: P200000D", BASE + "    callTimeout: P200000D\n", "providers.main.callTimeout"));
        cases.add(new Case(
                "perHour: 1e999999999",
                BASE + "    pricing: {type: per-instance-hour, perHour: 1e999999999}\n",
                "providers.main.pricing.perHour"));
        cases.add(new Case(
                "inputPerMillion: 1e999999999",
                BASE + "    pricing: {type: per-token, inputPerMillion: 1e999999999, outputPerMillion: 1}\n",
                "providers.main.pricing.inputPerMillion"));
        cases.add(new Case(
                "lists nested 20000 deep",
                BASE + "    pricing: " + "[".repeat(20_000) + "]".repeat(20_000) + "\n",
                null));
        cases.add(new Case(
                "mappings nested 5000 deep",
                BASE + "    pricing: " + "{a: ".repeat(5_000) + "1" + "}".repeat(5_000) + "\n",
                null));
        cases.add(new Case(
                "keepWarmEvery: 1ms",
                ROUTED.replace("routing:\n", "routing:\n  members:\n    a: {keepWarmEvery: 1ms}\n"),
                "routing.members.a.keepWarmEvery"));

        List<String> wrong = new ArrayList<>();
        for (Case c : cases) {
            Probe.Outcome<InferenceClient> o = probe.run(
                    "load " + c.name(),
                    Duration.ofSeconds(10),
                    ConfigurationException.class,
                    () -> InferenceClients.loader().env(ENV).load(c.document()));
            if (o.value() != null) {
                o.value().close();
                wrong.add(c.name() + ": loaded without an error");
            } else if (!(o.error() instanceof ConfigurationException)) {
                wrong.add(c.name() + ": " + o.describe());
            } else if (c.path() != null && !o.error().getMessage().contains(c.path())) {
                wrong.add(c.name() + ": the message does not name " + c.path() + ": "
                        + o.error().getMessage());
            }
        }
        assertThat(wrong)
                .as("documents not refused with a ConfigurationException naming the key")
                .isEmpty();
    }
}
