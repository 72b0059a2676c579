package dev.hybridinference.faults;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.cost.CapacityReport;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.FaultServer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * Item 12: on capacity billed per instance hour, the calls' attributed cost can never exceed what the
 * capacity was billed, and idle cost is never negative, whatever mix of successes and failures runs at
 * once. 32 callers make blocking calls and streams, a third of which fail after a delay, while
 * a checker reads {@code ledger.capacity(id)} every few milliseconds, and once more at the end.
 */
@FaultItem(value = 12, title = "Cost invariants")
class Item12CostInvariantsTest extends FaultTestBase {

    @Test
    void attributedNeverExceedsBilledUnderConcurrentFailures() throws Exception {
        FaultServer server = server().answerTokens(8)
                .chatDelay(Duration.ofMillis(60))
                .chunkDelay(Duration.ofMillis(5))
                .failWhenPromptContains("please-fail", FaultServer.Failure.status(500));
        CostLedger ledger = new CostLedger();
        InferenceClient client = load(
                Yaml.single(server.baseUrl(), "pricing", "{type: per-instance-hour, perHour: 3600, instances: 1}"),
                ledger);
        probe.ledger(ledger, Probe.Accounting.DIRECT);

        List<String> violations = Collections.synchronizedList(new ArrayList<>());
        AtomicBoolean running = new AtomicBoolean(true);
        Thread checker = new Thread(() -> {
            while (running.get()) {
                check(ledger, violations, "during");
                Probe.sleep(3);
            }
        });
        checker.setDaemon(true);
        checker.start();

        int callers = 32;
        int each = 6;
        boolean finished = Callers.together(callers, Duration.ofSeconds(30), caller -> {
            for (int i = 0; i < each; i++) {
                switch ((caller + i) % 3) {
                    case 0:
                        probe.chat(client, ask("please-fail " + caller), LIMIT);
                        break;
                    case 1:
                        probe.stream(client, ask("stream " + caller), LIMIT);
                        break;
                    default:
                        probe.chat(client, ask("chat " + caller), LIMIT);
                        break;
                }
            }
        });
        assertThat(finished).as("all callers finished").isTrue();
        running.set(false);
        checker.join(2000);
        for (int i = 0; i < 5; i++) {
            check(ledger, violations, "after");
            Probe.sleep(20);
        }
        assertThat(violations)
                .as("capacity reports with attributed > billed or idle < 0 (%d calls)", callers * each)
                .isEmpty();
    }

    private static void check(CostLedger ledger, List<String> violations, String when) {
        CapacityReport r = ledger.capacity("main").orElse(null);
        if (r == null) {
            violations.add(when + ": no capacity report for main");
            return;
        }
        if (r.attributed().compareTo(r.billed()) > 0 || r.idle().signum() < 0) {
            if (violations.size() < 5) {
                violations.add(when + ": billed " + r.billed().toPlainString() + ", attributed "
                        + r.attributed().toPlainString() + ", idle " + r.idle().toPlainString() + " over "
                        + r.uptime().toMillis() + " ms");
            }
        }
    }
}
