package dev.hybridinference.core.spi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
    void attemptsKeepTheirOrderAndCannotBeChangedFromOutside() {
        CallContext ctx = context();
        assertThat(ctx.attempts()).isEmpty();
        Attempt first = new Attempt("p", "a", "", Attempt.Outcome.FAILED, Duration.ofMillis(1), "boom");
        Attempt second = new Attempt("p", "b", "", Attempt.Outcome.SUCCEEDED, Duration.ofMillis(2), null);
        ctx.addAttempt(first);
        List<Attempt> afterOne = ctx.attempts();
        ctx.addAttempt(second);
        assertThat(afterOne).containsExactly(first);
        assertThat(ctx.attempts()).containsExactly(first, second);
        assertThatThrownBy(() -> ctx.attempts().add(first)).isInstanceOf(UnsupportedOperationException.class);
        assertThatThrownBy(() -> ctx.addAttempt(null)).isInstanceOf(NullPointerException.class);
    }

    @Test
    void instanceTimeAddsUpFromItsOpeningZero() {
        CallContext ctx = context();
        assertThat(ctx.instanceTime()).isEmpty();
        ctx.addInstanceTime(Duration.ZERO);
        assertThat(ctx.instanceTime()).contains(Duration.ZERO);
        ctx.addInstanceTime(Duration.ofMillis(7));
        ctx.addInstanceTime(Duration.ofNanos(5));
        ctx.addInstanceTime(Duration.ofMillis(-1)); // ignored
        assertThat(ctx.instanceTime()).contains(Duration.ofMillis(7).plusNanos(5));
    }

    @Test
    void instanceTimeSaturates() {
        CallContext ctx = context();
        ctx.addInstanceTime(Duration.ofSeconds(Long.MAX_VALUE));
        ctx.addInstanceTime(Duration.ofSeconds(Long.MAX_VALUE));
        assertThat(ctx.instanceTime()).contains(Duration.ofSeconds(Long.MAX_VALUE, 999_999_999));
    }
}
