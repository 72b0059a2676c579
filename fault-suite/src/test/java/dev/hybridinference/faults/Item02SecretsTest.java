package dev.hybridinference.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.FaultServer;
import dev.hybridinference.vllm.VllmClient;
import org.junit.jupiter.api.Test;

/**
 * Item 2: the API key must appear nowhere a user or a log collector can see it: not in exception
 * messages or stack traces (causes included), receipts (text, summary, attempts' errors) or log lines,
 * even when a hostile server echoes the {@code Authorization} header back, and not in the configuration
 * errors of a document that holds it. The key is {@value FaultTestBase#API_KEY}; the probe searches every
 * text for it and for its last ten characters.
 */
@FaultItem(value = 2, title = "Secrets in errors, receipts and logs")
class Item02SecretsTest extends FaultTestBase {

    @Test
    void aServerEchoingTheAuthorizationHeaderDoesNotLeakTheKey() {
        FaultServer server = server();
        CostLedger ledger = new CostLedger();
        InferenceClient client = load(Yaml.single(server.baseUrl()), ledger);
        probe.ledger(ledger, Probe.Accounting.DIRECT);

        int[] statuses = {400, 401, 500};
        for (int status : statuses) {
            for (FaultServer.EchoStyle style : FaultServer.EchoStyle.values()) {
                server.echoHeaders(status, style);
                Probe.Outcome<?> blocking = probe.chat(client, ask("echo"), LIMIT);
                Probe.Outcome<?> streamed = probe.stream(client, ask("echo"), LIMIT);
                assertThat(blocking.failure())
                        .as("HTTP %d %s, blocking: %s", status, style, blocking.describe())
                        .isNotNull();
                assertThat(streamed.failure())
                        .as("HTTP %d %s, stream: %s", status, style, streamed.describe())
                        .isNotNull();
            }
        }
        assertThat(server.requests("POST", "/v1/chat/completions"))
                .allSatisfy(r -> assertThat(r.header("Authorization")).isEqualTo("Bearer " + API_KEY));
        assertThat(probe.findings()).as("where the key was found").noneMatch(f -> f.startsWith("secret"));
    }

    @Test
    void aComposedClientDoesNotLeakTheKeyEither() {
        FaultServer a = server().echoHeaders(500, FaultServer.EchoStyle.KEY_VALUE);
        FaultServer b = server().echoHeaders(503, FaultServer.EchoStyle.HEADER_LINES);
        CostLedger ledger = new CostLedger();
        String yaml = "providers:\n" + Yaml.vllm("a", a.baseUrl()) + Yaml.vllm("b", b.baseUrl())
                + "routing:\n  tiers: {t: [a, b]}\n  defaultTier: t\n"
                + "  retry: {maxAttempts: 4, initialBackoff: 1ms, maxBackoff: 2ms}\n";
        InferenceClient client = load(yaml, ledger);
        probe.ledger(ledger, Probe.Accounting.ROUTED);

        Probe.Outcome<?> blocking = probe.chat(client, ask("echo"), LIMIT);
        Probe.Outcome<?> streamed = probe.stream(client, ask("echo"), LIMIT);
        PushRecorder pushed = probe.push(client, ask("echo"), LIMIT);
        assertThat(blocking.failure()).as(blocking.describe()).isNotNull();
        assertThat(streamed.failure()).as(streamed.describe()).isNotNull();
        assertThat(pushed.error()).as(pushed.describe()).isNotNull();
        assertThat(probe.findings()).as("where the key was found").noneMatch(f -> f.startsWith("secret"));
    }

    @Test
    void aYamlSyntaxErrorOnTheApiKeyLineDoesNotQuoteTheKey() {
        String[] documents = {
            // an unclosed quote
            "providers:\n  main:\n    type: vllm\n    baseUrl: http://127.0.0.1:1\n    apiKey: \"" + API_KEY
                    + "\n    model: m\n",
            // a second colon: "mapping values are not allowed here"
            "providers:\n  main:\n    type: vllm\n    baseUrl: http://127.0.0.1:1\n    apiKey: " + API_KEY
                    + ": extra\n    model: m\n",
            // a flow sequence opened on the key's line and never closed
            "providers:\n  main:\n    type: vllm\n    apiKey: [" + API_KEY + "\n    baseUrl: http://127.0.0.1:1\n",
            // the same in JSON
            "{\"providers\": {\"main\": {\"type\": \"vllm\", \"apiKey\": \"" + API_KEY + "\" \"baseUrl\": 1}}}"
        };
        int i = 0;
        for (String doc : documents) {
            int n = i++;
            Probe.Outcome<InferenceClient> o = probe.run(
                    "load document " + n,
                    LIMIT,
                    ConfigurationException.class,
                    () -> InferenceClients.loader().env(ENV).load(doc));
            closeIfLoaded(o);
            assertThat(o.error()).as("document %d: %s", n, o.describe()).isInstanceOf(ConfigurationException.class);
        }
        assertThat(probe.findings()).as("where the key was found").noneMatch(f -> f.startsWith("secret"));
    }

    @Test
    void credentialsInABaseUrlStayOutOfErrorsAndReceipts() {
        String bad = "providers:\n  main:\n    type: vllm\n    baseUrl: \"http://user:" + API_KEY
                + "@127.0.0.1:99999999/\"\n    model: m\n";
        Probe.Outcome<InferenceClient> invalid = probe.run(
                "load a URL with credentials and a bad port",
                LIMIT,
                ConfigurationException.class,
                () -> InferenceClients.loader().env(ENV).load(bad));
        closeIfLoaded(invalid);
        assertThat(invalid.error()).as(invalid.describe()).isInstanceOf(ConfigurationException.class);
        assertThat(((ConfigurationException) invalid.error()).path()).isEqualTo("providers.main.baseUrl");

        CostLedger ledger = new CostLedger();
        String good = "providers:\n  main:\n    type: vllm\n    baseUrl: \"http://user:" + API_KEY
                + "@127.0.0.1:1/\"\n    model: m\n    scrapeInterval: 0s\n    connectTimeout: 1s\n";
        InferenceClient client = load(good, ledger);
        probe.ledger(ledger, Probe.Accounting.DIRECT);
        Probe.Outcome<?> refused = probe.chat(client, ask("hello"), LIMIT);
        Probe.Outcome<?> refusedStream = probe.stream(client, ask("hello"), LIMIT);
        assertThat(refused.failure()).as(refused.describe()).isNotNull();
        assertThat(refusedStream.failure()).as(refusedStream.describe()).isNotNull();
        probe.scan("client info", client.info().toString());
        probe.scan("replica status", ((VllmClient) client).replicas().toString());
        assertThat(probe.findings()).as("where the key was found").noneMatch(f -> f.startsWith("secret"));
    }

    private static void closeIfLoaded(Probe.Outcome<InferenceClient> o) {
        if (o.value() != null) {
            o.value().close();
        }
    }
}
