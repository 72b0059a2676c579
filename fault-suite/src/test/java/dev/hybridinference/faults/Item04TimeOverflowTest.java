package dev.hybridinference.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.testkit.FaultServer;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Item 4: times far in the future must not overflow into an untyped {@link ArithmeticException} or a
 * lost callback. {@code Retry-After: 99999999999}, a Retry-After date in the year 9999, a huge {@code
 * retry-after-ms}, a request deadline of {@link Instant#MAX} or 300 years from now, and a routing
 * configuration whose backoffs are 200000 days, all through a {@link HybridClient} built from
 * configuration, blocking and pushed: every call ends with an answer or an {@code InferenceException},
 * and every push handler gets exactly one terminal callback.
 */
@FaultItem(value = 4, title = "Time overflow")
class Item04TimeOverflowTest extends FaultTestBase {
    private static final String ROUTING = "routing:\n  tiers: {t: [a]}\n  defaultTier: t\n"
            + "  retry: {maxAttempts: 2, initialBackoff: 1ms, maxBackoff: 5ms, maxRetryAfter: 100ms,"
            + " maxTotalWait: 2s}\n";
    private static final Duration PUSH_LIMIT = Duration.ofSeconds(2);

    private FaultServer server;
    private InferenceClient client;

    private void start(String routing) {
        server = server();
        CostLedger ledger = new CostLedger();
        client = load("providers:\n" + Yaml.vllm("a", server.baseUrl()) + routing, ledger);
        assertThat(client).isInstanceOf(HybridClient.class);
        probe.ledger(ledger, Probe.Accounting.ROUTED);
    }

    @Test
    void retryAfterValuesFarInTheFutureEndInTypedErrors() {
        Map<String, FaultServer.Failure> cases = new LinkedHashMap<>();
        cases.put("Retry-After: 99999999999", FaultServer.Failure.serviceUnavailable("99999999999"));
        cases.put(
                "Retry-After in the year 9999",
                FaultServer.Failure.serviceUnavailable("Fri, 31 Dec 9999 23:59:59 GMT"));
        cases.put("retry-after-ms: 1e300", FaultServer.Failure.status(503).withHeader("retry-after-ms", "1e300"));
        cases.put(
                "Retry-After: 9223372036854775807",
                FaultServer.Failure.status(429).withHeader("Retry-After", "9223372036854775807"));
        // One server and client per case, so that a push still running cannot meet the next case's fault.
        CostLedger ledger = new CostLedger();
        probe.ledger(ledger, Probe.Accounting.ROUTED);
        List<String> bad = new ArrayList<>();
        List<PushRecorder> pushes = new ArrayList<>();
        for (Map.Entry<String, FaultServer.Failure> c : cases.entrySet()) {
            FaultServer s = server().failAlways(c.getValue());
            InferenceClient caseClient = load("providers:\n" + Yaml.vllm("a", s.baseUrl()) + ROUTING, ledger);
            Probe.Outcome<ChatResponse> o = probe.chat(caseClient, ask("retry", Duration.ofSeconds(5)), LIMIT);
            if (o.failure() == null) {
                bad.add(c.getKey() + ", blocking: " + o.describe());
            } else if (!o.failure().isRetryable()) {
                bad.add(c.getKey() + ", blocking: a 503/429 should stay retryable, got " + o.describe());
            }
            pushes.add(probe.startPush(caseClient, ask("retry", Duration.ofSeconds(5))));
        }
        probe.finishPushes(pushes, PUSH_LIMIT);
        checkPushes(new ArrayList<>(cases.keySet()), pushes, bad, false);
        assertThat(bad)
                .as("calls that did not end in a retryable InferenceException and one terminal callback")
                .isEmpty();
    }

    @Test
    void deadlinesFarInTheFutureAreServedNormally() {
        start(ROUTING);
        Map<String, Instant> deadlines = new LinkedHashMap<>();
        deadlines.put("deadline Instant.MAX", Instant.MAX);
        deadlines.put(
                "deadline in 300 years",
                ZonedDateTime.now(ZoneOffset.UTC).plusYears(300).toInstant());
        List<String> bad = new ArrayList<>();
        List<PushRecorder> pushes = new ArrayList<>();
        for (Map.Entry<String, Instant> d : deadlines.entrySet()) {
            ChatRequest r = ChatRequest.builder()
                    .user("far deadline")
                    .options(RequestOptions.builder().deadline(d.getValue()).build())
                    .build();
            Probe.Outcome<ChatResponse> o = probe.chat(client, r, LIMIT);
            if (!o.ok()) {
                bad.add(d.getKey() + ", blocking: " + o.describe());
            }
            pushes.add(probe.startPush(client, r));
        }
        probe.finishPushes(pushes, PUSH_LIMIT);
        checkPushes(new ArrayList<>(deadlines.keySet()), pushes, bad, true);
        assertThat(bad).as("calls with far deadlines that did not succeed").isEmpty();
    }

    @Test
    void backoffsOfTwoHundredThousandDaysEndAtTheDeadline() {
        server = server();
        CostLedger ledger = new CostLedger();
        String doc = "providers:\n" + Yaml.vllm("a", server.baseUrl())
                + "routing:\n  tiers: {t: [a]}\n  defaultTier: t\n"
                + "  retry: {maxAttempts: 3, initialBackoff: P200000D, maxBackoff: P200000D, maxRetryAfter: P200000D,"
                + " maxTotalWait: P200000D}\n";
        Probe.Outcome<InferenceClient> loaded = probe.run(
                "load 200000-day backoffs",
                LIMIT,
                ConfigurationException.class,
                () -> InferenceClients.loader().env(ENV).ledger(ledger).load(doc));
        if (loaded.error() instanceof ConfigurationException) {
            // Refusing such a policy at load time, naming the key, is as good as honouring it safely.
            assertThat(((ConfigurationException) loaded.error()).path()).startsWith("routing.retry");
            return;
        }
        assertThat(loaded.ok()).as("loading: " + loaded.describe()).isTrue();
        client = using(loaded.value());
        probe.ledger(ledger, Probe.Accounting.ROUTED);
        server.failAlways(FaultServer.Failure.serviceUnavailable("99999999999"));
        List<String> bad = new ArrayList<>();
        Probe.Outcome<ChatResponse> o = probe.chat(client, ask("backoff", Duration.ofSeconds(2)), LIMIT);
        if (o.failure() == null) {
            bad.add("blocking: " + o.describe());
        } else if (o.took().compareTo(Duration.ofSeconds(4)) > 0) {
            bad.add("blocking: ended after " + o.took().toMillis() + " ms, the deadline was 2 s");
        }
        server.failAlways(FaultServer.Failure.status(503));
        Probe.Outcome<ChatResponse> plain = probe.chat(client, ask("backoff", Duration.ofSeconds(2)), LIMIT);
        if (plain.failure() == null) {
            bad.add("blocking without Retry-After: " + plain.describe());
        }
        List<PushRecorder> pushes = List.of(probe.startPush(client, ask("backoff", Duration.ofSeconds(2))));
        probe.finishPushes(pushes, Duration.ofSeconds(3));
        checkPushes(List.of("push"), pushes, bad, false);
        assertThat(bad).as("calls under a 200000-day backoff").isEmpty();
    }

    private static void checkPushes(List<String> names, List<PushRecorder> pushes, List<String> bad, boolean succeed) {
        Probe.sleep(100); // a second terminal callback would come now
        for (int i = 0; i < pushes.size(); i++) {
            PushRecorder p = pushes.get(i);
            if (p.terminals() != 1) {
                bad.add(names.get(i) + ", push: " + p.terminals() + " terminal callbacks (" + p.describe() + ")");
            } else if (succeed && p.response() == null) {
                bad.add(names.get(i) + ", push: " + p.describe());
            }
        }
    }
}
