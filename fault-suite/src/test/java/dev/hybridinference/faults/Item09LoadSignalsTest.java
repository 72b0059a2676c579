package dev.hybridinference.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.LoadSnapshot;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.FaultServer;
import dev.hybridinference.vllm.ReplicaStatus;
import dev.hybridinference.vllm.VllmClient;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.logging.Level;
import org.junit.jupiter.api.Test;

/**
 * Item 9: load signals from servers that are not vLLM. llama.cpp's server exports {@code
 * llamacpp:requests_processing}, {@code llamacpp:requests_deferred} and {@code
 * llamacpp:kv_cache_usage_ratio}; the replica's status and the client's load should show them. A server
 * whose {@code /metrics} has no name the client knows is worth one warning in the log, not one per scrape
 * and not silence.
 */
@FaultItem(value = 9, title = "Load signals")
class Item09LoadSignalsTest extends FaultTestBase {

    @Test
    void llamaCppMetricsAreRead() {
        FaultServer server =
                server().metrics(FaultServer.MetricsStyle.LLAMA_CPP).load(2, 3, 0.25);
        VllmClient client =
                (VllmClient) load(Yaml.single(server.baseUrl(), "scrapeInterval", "100ms"), new CostLedger());
        ReplicaStatus status = awaitScrapes(server, client, 3);
        assertThat(status.running())
                .as("running from llamacpp:requests_processing: " + status)
                .isEqualTo(2.0);
        assertThat(status.waiting())
                .as("waiting from llamacpp:requests_deferred: " + status)
                .isEqualTo(3.0);
        assertThat(status.kvCacheUsage())
                .as("KV usage from llamacpp:kv_cache_usage_ratio: " + status)
                .isEqualTo(0.25);
        LoadSnapshot load = client.load();
        assertThat(load.waiting()).as("client load: " + load).isEqualTo(3.0);
    }

    @Test
    void metricsWithNoKnownNameAreWarnedAboutOnce() {
        FaultServer server =
                server().metrics(FaultServer.MetricsStyle.UNKNOWN_NAMES).load(0, 5, 0);
        VllmClient client =
                (VllmClient) load(Yaml.single(server.baseUrl(), "scrapeInterval", "100ms"), new CostLedger());
        awaitScrapes(server, client, 6);
        List<String> warnings = probe.logs().lines(Level.WARNING).stream()
                .filter(l -> l.toLowerCase(Locale.ROOT).contains("metric"))
                .toList();
        assertThat(warnings)
                .as(
                        "warnings about /metrics after %d scrapes of a server with no known metric names",
                        server.count("GET", "/metrics"))
                .withFailMessage("all lines: %s / status %s", probe.logs().lines(), client.replicas())
                .hasSize(1);
    }

    private static ReplicaStatus awaitScrapes(FaultServer server, VllmClient client, int scrapes) {
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (server.count("GET", "/metrics") < scrapes && System.nanoTime() < deadline) {
            Probe.sleep(20);
        }
        Probe.sleep(30); // the last scrape's figures are stored just after its response
        assertThat(server.count("GET", "/metrics")).as("scrapes of /metrics").isGreaterThanOrEqualTo(scrapes);
        return client.replicas().get(0);
    }
}
