package dev.hybridinference.redis;

import dev.hybridinference.core.BudgetExceededException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.routing.Budget;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.routing.MemberOptions;
import dev.hybridinference.core.routing.RetryPolicy;
import dev.hybridinference.core.routing.StandardRoutingPolicy;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One instance of an application, in a process of its own, for the fleet tests: a composite client over an
 * in-process member, sharing its state through Redis.
 *
 * <ul>
 *   <li>{@code spend URL PREFIX THREADS COST LIMIT}: prints {@code READY} once connected, waits for {@code GO}
 *       on its input, then calls from {@code THREADS} threads, each until the shared daily budget of {@code
 *       LIMIT} dollars refuses it, every call costing {@code COST}; prints {@code RESULT answered=N errors=N
 *       fallbacks=N} and exits;
 *   <li>{@code hold URL PREFIX LEASE_MS}: takes both slots of a member limited to 2 in flight, with calls that
 *       never end, prints {@code HELD}, and waits to be killed.
 * </ul>
 */
public final class FleetInstance {
    static final RetryPolicy ONCE =
            new RetryPolicy(1, Duration.ZERO, Duration.ZERO, 1, 0, Duration.ZERO, Duration.ZERO);

    private FleetInstance() {}

    /** Runs one instance; see the class description for the arguments. */
    public static void main(String[] args) throws Exception {
        RedisSharedState state = RedisSharedState.builder(args[1])
                .prefix(args[2])
                // Generous: the test is about budgets, not about a loaded machine's latency.
                .timeout(Duration.ofSeconds(2))
                .connectTimeout(Duration.ofSeconds(2))
                .build();
        state.get("connect");
        if (args[0].equals("spend")) {
            spend(state, Integer.parseInt(args[3]), new BigDecimal(args[4]), new BigDecimal(args[5]));
        } else {
            hold(state, Duration.ofMillis(Long.parseLong(args[3])));
        }
    }

    static HybridClient.Builder client(RedisSharedState state) {
        return HybridClient.builder().id("fleet").retry(ONCE).sharedState(state);
    }

    static StandardRoutingPolicy budget(BigDecimal limit) {
        return StandardRoutingPolicy.builder()
                .budget(new Budget("fleet-daily", Duration.ofDays(1), limit, Map.of(), null))
                .build();
    }

    private static void spend(RedisSharedState state, int threads, BigDecimal cost, BigDecimal limit) throws Exception {
        FixedCostClient member = new FixedCostClient("m", cost);
        member.latency = Duration.ofMillis(1);
        AtomicInteger answered = new AtomicInteger();
        AtomicInteger errors = new AtomicInteger();
        try (HybridClient client =
                client(state).member("m", member).policy(budget(limit)).build()) {
            System.out.println("READY");
            System.out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            if (!"GO".equals(in.readLine())) {
                throw new IllegalStateException("expected GO");
            }
            List<Thread> workers = new ArrayList<>();
            for (int i = 0; i < threads; i++) {
                Thread t = new Thread(() -> {
                    for (int n = 0; n < 100_000; n++) {
                        try {
                            client.chat(ChatRequest.of("spend"));
                            answered.incrementAndGet();
                        } catch (BudgetExceededException e) {
                            return;
                        } catch (InferenceException e) {
                            errors.incrementAndGet();
                            return;
                        }
                    }
                });
                workers.add(t);
                t.start();
            }
            for (Thread t : workers) {
                t.join();
            }
            System.out.println("RESULT answered=" + answered + " errors=" + errors + " fallbacks="
                    + client.sharedStateStatus().fallbacks());
            System.out.flush();
        } finally {
            state.close();
        }
        System.exit(0);
    }

    private static void hold(RedisSharedState state, Duration lease) throws Exception {
        FixedCostClient member = new FixedCostClient("m", BigDecimal.ZERO).hold();
        HybridClient client = client(state)
                .member("m", member, MemberOptions.builder().maxInFlight(2).build())
                .sharedSlotLease(lease)
                .build();
        for (int i = 0; i < 2; i++) {
            Thread t = new Thread(() -> client.chat(ChatRequest.of("never ends")));
            t.setDaemon(true);
            t.start();
        }
        while (member.inFlight() < 2) {
            Thread.sleep(2);
        }
        System.out.println("HELD");
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
