package dev.hybridinference.examples;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.localgpu.LocalRuntime;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/**
 * Runs every example's main logic against the emulators, with short settings and an environment of the
 * test's own (so that no endpoint of the machine running it is used), and checks what each one is there to
 * show, from its receipts and its output.
 *
 * <p>The cold-start example spends most of its time waiting for a keep-warm ping (they go out every 10 s at
 * the least), so it starts first, on a thread of its own, and the others run meanwhile.
 */
class ExamplesTest {
    /** No real endpoint: every example starts its emulators. */
    private static final Map<String, String> NO_ENDPOINTS = Map.of();

    private static final ByteArrayOutputStream COLD_START_PRINTED = new ByteArrayOutputStream();
    private static CompletableFuture<ColdStartAware.Outcome> coldStart;

    private final ByteArrayOutputStream printed = new ByteArrayOutputStream();
    private final PrintStream out = new PrintStream(printed, true, StandardCharsets.UTF_8);

    @BeforeAll
    static void startTheColdStartExample() {
        PrintStream coldStartOut = new PrintStream(COLD_START_PRINTED, true, StandardCharsets.UTF_8);
        coldStart = CompletableFuture.supplyAsync(() -> ColdStartAware.run(coldStartOut, NO_ENDPOINTS, Duration.ZERO));
    }

    private String output() {
        return printed.toString(StandardCharsets.UTF_8);
    }

    /** What the example printed, in the test's log. */
    @AfterEach
    void showTheOutput(TestInfo test) {
        System.out.println("--- " + test.getDisplayName() + "\n" + output());
    }

    @Test
    void emulatorsThatFailToStartStopThoseStartedBeforeThem() {
        Emulators emulators = new Emulators(out, NO_ENDPOINTS).vllm("VLLM_BASE_URL", b -> b);
        java.net.URI url = java.net.URI.create(emulators.env().get("VLLM_BASE_URL"));
        assertThat(reachable(url)).isTrue();

        assertThatThrownBy(() -> emulators.sageMaker("SAGEMAKER_ENDPOINT", "SAGEMAKER_ENDPOINT_URL", b -> {
                    throw new IllegalStateException("no port today");
                }))
                .hasMessage("no port today");
        assertThat(reachable(url)).as("the vLLM emulator was stopped").isFalse();
    }

    private static boolean reachable(java.net.URI url) {
        try (java.net.Socket s = new java.net.Socket(url.getHost(), url.getPort())) {
            return true;
        } catch (java.io.IOException e) {
            return false;
        }
    }

    @Test
    void quickStartRunsAgainstItsTestServer() throws Exception {
        PrintStream original = System.out;
        System.setOut(out);
        try {
            QuickStart.main(new String[0]);
        } finally {
            System.setOut(original);
        }
        assertThat(output())
                .contains("Answer: ")
                .contains("Receipt: main (SERVER")
                .contains("Ledger: 2 calls");
    }

    @Test
    void configSwapRunsTheSameCodeOnEveryPlatform() {
        Map<String, Receipt> receipts = ConfigSwap.run(out, NO_ENDPOINTS);

        assertThat(receipts).containsKeys("vllm", "sagemaker", "azure", "cloudrun");
        assertThat(receipts.get("vllm").deploymentKind()).isEqualTo(DeploymentKind.SERVER);
        assertThat(receipts.get("sagemaker").deploymentKind()).isEqualTo(DeploymentKind.SERVERLESS);
        assertThat(receipts.get("azure").deploymentKind()).isEqualTo(DeploymentKind.SERVERLESS);
        assertThat(receipts.get("cloudrun").deploymentKind()).isEqualTo(DeploymentKind.SERVERLESS);
        if (LocalRuntime.isAvailable()) {
            assertThat(receipts.get("local").deploymentKind()).isEqualTo(DeploymentKind.LOCAL);
        } else {
            assertThat(output()).contains("local: skipped");
        }
        receipts.forEach((platform, r) -> {
            assertThat(r.providerId())
                    .as("the provider named in %s.yaml", platform)
                    .isEqualTo(platform);
            assertThat(r.usage().outputTokens()).as(platform).isPositive();
            assertThat(r.tags()).containsEntry("feature", "config-swap");
            assertThat(output()).contains(r.summary());
        });
        // Priced platforms charge something for the call.
        assertThat(receipts.get("azure").cost()).isPositive();
        assertThat(receipts.get("sagemaker").cost()).isPositive();
    }

    @Test
    void modelTieringSendsTaggedAndLongRequestsToTheLargeModel() {
        List<Receipt> r = ModelTiering.run(out, NO_ENDPOINTS);

        assertThat(r).extracting(x -> x.routeFacts().tier().orElse(null)).containsExactly("small", "large", "large");
        assertThat(r).extracting(Receipt::providerId).containsExactly("small", "large", "large");
        assertThat(r.get(0).model()).isEqualTo("llama-3.1-8b-instruct");
        assertThat(r.get(1).model()).isEqualTo("gpt-4o");
        assertThat(output()).contains("tier small -> small").contains("tier large -> large");
    }

    @Test
    void spilloverSendsWhatTheServerCannotTakeToServerless() {
        Spillover.Outcome o = Spillover.run(out, NO_ENDPOINTS, 10);

        assertThat(o.spilled()).isPositive().isLessThan(o.calls());
        for (Receipt r : o.receipts()) {
            assertThat(r.providerId()).isEqualTo(r.routeFacts().spilledOver() ? "serverless" : "server");
        }
        assertThat(output())
                .contains("burst of 10: " + (10 - o.spilled()) + " on the server, " + o.spilled() + " spilled over");
    }

    @Test
    void coldStartAwareRoutingAvoidsTheColdEndpointAndKeepWarmHoldsItWarmAtACost() {
        ColdStartAware.Outcome o = coldStart.join();
        out.print(COLD_START_PRINTED.toString(StandardCharsets.UTF_8));

        assertThat(o.whileCold().providerId())
                .as("predicted cold: the server answers")
                .isEqualTo("server");
        assertThat(o.afterKeepWarm().providerId())
                .as("kept warm: serverless answers")
                .isEqualTo("serverless");
        assertThat(o.afterKeepWarm().coldStart().observed()).isFalse();
        assertThat(o.keepWarmCost()).as("what the keep-warm pings cost").isPositive();
        assertThat(output()).contains("keep-warm cost so far: $");
    }

    @Test
    void geographicRoutingSendsEachRegionToItsNearestDeployment() {
        Map<String, Receipt> r = GeographicRouting.run(out, NO_ENDPOINTS);

        assertThat(r.get("eu").providerId()).isEqualTo("eu-server");
        assertThat(r.get("us").providerId()).isEqualTo("us-serverless");
        assertThat(r.get("us").deploymentKind()).isEqualTo(DeploymentKind.SERVERLESS);
        assertThat(r.get("us").attributes()).containsEntry("region", "us-east-1");
        assertThat(r.get("none").providerId()).as("the default region").isEqualTo("eu-server");
        assertThat(r.get("us").routeFacts().tier()).contains("us");
    }

    @Test
    void theProfileVariableSwitchesTheProviders() {
        Receipt dev = DevVsProd.run(out, NO_ENDPOINTS);
        Receipt prod = DevVsProd.run(out, Map.of("APP_PROFILE", "prod"));

        assertThat(dev.providerId()).isEqualTo("dev-box");
        assertThat(dev.deploymentKind()).isEqualTo(DeploymentKind.SERVER);
        assertThat(prod.providerId()).isEqualTo("prod-azure");
        assertThat(prod.deploymentKind()).isEqualTo(DeploymentKind.SERVERLESS);
        assertThatThrownBy(() -> DevVsProd.run(out, Map.of("APP_PROFILE", "staging")))
                .isInstanceOf(ConfigurationException.class)
                .hasMessageStartingWith("routing.defaultTier");
    }

    @Test
    void streamingDeliversChunksAndTheReceiptAtTheEnd() {
        Streaming.Outcome o = Streaming.run(out, NO_ENDPOINTS);

        assertThat(o.chunks()).isGreaterThan(1);
        assertThat(o.text()).isNotBlank();
        assertThat(o.receipt().timeToFirstToken()).isPresent();
        assertThat(o.receipt().timeToFirstToken().orElseThrow())
                .isLessThanOrEqualTo(o.receipt().totalTime());
        assertThat(o.receipt().usage().outputTokens()).isPositive();
        assertThat(output()).contains(o.text()).contains(o.chunks() + " chunks; time to first token ");
    }

    @Test
    void theLedgerTotalsAreTheSumsOfTheReceipts() {
        CostReport.Outcome o = CostReport.run(out, NO_ENDPOINTS);

        BigDecimal sum = o.receipts().stream().map(Receipt::cost).reduce(BigDecimal.ZERO, BigDecimal::add);
        assertThat(o.totals().calls()).isEqualTo(6);
        assertThat(o.totals().total()).isEqualByComparingTo(sum);
        assertThat(o.totals().byProvider().values().stream().reduce(BigDecimal.ZERO, BigDecimal::add))
                .isEqualByComparingTo(sum);
        for (String key : List.of("tenant", "feature")) {
            assertThat(o.totals().byTag().get(key).values().stream().reduce(BigDecimal.ZERO, BigDecimal::add))
                    .as("by %s", key)
                    .isEqualByComparingTo(sum);
        }
        BigDecimal acme = o.receipts().stream()
                .filter(r -> "acme".equals(r.tags().get("tenant")))
                .map(Receipt::cost)
                .reduce(BigDecimal.ZERO, BigDecimal::add);
        assertThat(o.totals().tag("tenant", "acme")).isEqualByComparingTo(acme);
        assertThat(o.totals().provider("serverless")).isPositive();

        var capacity = o.serverCapacity();
        assertThat(capacity.billed()).isPositive();
        assertThat(capacity.attributed().add(capacity.idle())).isEqualByComparingTo(capacity.billed());
        assertThat(capacity.attributed()).isEqualByComparingTo(o.totals().provider("server"));
        assertThat(output()).contains("capacity server: billed $");
    }

    @Test
    void theLocalModelRunsOrSaysWhyNot() {
        Optional<Receipt> r = LocalModel.run(out, NO_ENDPOINTS);

        if (LocalRuntime.isAvailable()) {
            assertThat(r).isPresent();
            assertThat(r.get().deploymentKind()).isEqualTo(DeploymentKind.LOCAL);
            assertThat(r.get().usage().outputTokens()).isPositive();
            assertThat(r.get().timeToFirstToken()).isPresent();
            assertThat(output()).contains("random weights");
        } else {
            assertThat(r).isEmpty();
            assertThat(output()).contains("The local runtime is not available");
        }
    }
}
