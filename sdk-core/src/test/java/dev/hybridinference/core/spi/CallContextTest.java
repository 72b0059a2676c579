package dev.hybridinference.core.spi;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.Receipt;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** A call's one receipt, when a reader and a closer report its failure at once. */
@Timeout(20)
class CallContextTest {
    private static CallContext context() {
        return new CallContext("p", ChatRequest.of("hi"), Clock.systemUTC());
    }

    private static Receipt receipt(String route) {
        return Receipt.builder()
                .providerId("p")
                .deploymentKind(DeploymentKind.SERVER)
                .model("m")
                .route(route)
                .attempt(new Attempt("p", "", "", Attempt.Outcome.CANCELLED, Duration.ZERO, null))
                .startedAt(Instant.now())
                .build();
    }

    @Test
    void theFirstReporterRecordsTheReceiptAndLaterOnesShareIt() throws Exception {
        for (int round = 0; round < 200; round++) {
            CallContext ctx = context();
            List<Receipt> recorded = new CopyOnWriteArrayList<>();
            CyclicBarrier start = new CyclicBarrier(2);
            ExecutorService pool = Executors.newFixedThreadPool(2);
            List<Future<Optional<Receipt>>> got = new ArrayList<>();
            for (String who : List.of("reader", "closer")) {
                got.add(pool.submit(() -> {
                    start.await();
                    return ctx.failureReceipt(() -> receipt(who), recorded::add);
                }));
            }
            Receipt a = got.get(0).get(5, TimeUnit.SECONDS).orElseThrow();
            Receipt b = got.get(1).get(5, TimeUnit.SECONDS).orElseThrow();
            pool.shutdown();
            assertThat(a).isSameAs(b);
            assertThat(recorded).containsExactly(a);
        }
    }

    @Test
    void aCallClaimedByItsSuccessHasNoFailureReceipt() {
        CallContext ctx = context();
        assertThat(ctx.claimReceipt()).isTrue();
        List<Receipt> recorded = new ArrayList<>();
        assertThat(ctx.failureReceipt(() -> receipt("late"), recorded::add)).isEmpty();
        assertThat(recorded).isEmpty();
        assertThat(ctx.claimReceipt()).isFalse();
    }

    @Test
    void instanceTimeSaturates() {
        CallContext ctx = context();
        ctx.addInstanceTime(Duration.ofSeconds(Long.MAX_VALUE));
        ctx.addInstanceTime(Duration.ofSeconds(Long.MAX_VALUE));
        assertThat(ctx.instanceTime()).contains(Duration.ofSeconds(Long.MAX_VALUE, 999_999_999));
    }
}
