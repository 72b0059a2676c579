package dev.hybridinference.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.CapacityExceededException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.routing.MemberOptions;
import dev.hybridinference.core.spi.SharedState;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.Timeout;

/**
 * Instances in processes of their own ({@link FleetInstance}) sharing one Redis: a budget holds across four of
 * them calling from 32 threads each, and the slots of one that is killed come free when their leases lapse.
 */
@Timeout(60)
class FleetTest {
    private static final Pattern RESULT = Pattern.compile("RESULT answered=(\\d+) errors=(\\d+) fallbacks=(\\d+)");

    private final List<Process> processes = new ArrayList<>();
    private String prefix;

    @BeforeEach
    void start(TestInfo test) {
        RedisTests.assumeReachable();
        prefix = RedisTests.uniquePrefix(test.getTestMethod().orElseThrow().getName());
    }

    @AfterEach
    void stop() {
        processes.forEach(Process::destroyForcibly);
        if (prefix != null) {
            RedisTests.deleteAll(prefix);
        }
    }

    /** A running instance: its process, the lines it prints, and its input. */
    private final class Instance {
        final Process process;
        final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        final OutputStream input;

        Instance(String... args) throws IOException {
            String java =
                    ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java");
            List<String> command = new ArrayList<>(
                    List.of(java, "-cp", System.getProperty("java.class.path"), FleetInstance.class.getName()));
            command.addAll(List.of(args));
            process = new ProcessBuilder(command).redirectErrorStream(true).start();
            processes.add(process);
            input = process.getOutputStream();
            Thread reader = new Thread(() -> {
                try (BufferedReader r =
                        new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                    for (String line; (line = r.readLine()) != null; ) {
                        lines.add(line);
                    }
                } catch (IOException e) {
                    // the process ended
                }
            });
            reader.setDaemon(true);
            reader.start();
        }

        /** Waits for a line starting with {@code start}, failing with everything printed before it. */
        String await(String start) throws InterruptedException {
            StringBuilder seen = new StringBuilder();
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(40);
            while (System.nanoTime() - until < 0) {
                String line = lines.poll(100, TimeUnit.MILLISECONDS);
                if (line == null) {
                    continue;
                }
                if (line.startsWith(start)) {
                    return line;
                }
                seen.append(line).append('\n');
            }
            throw new AssertionError("no line " + start + " from the instance; it printed:\n" + seen);
        }

        void send(String line) throws IOException {
            input.write((line + "\n").getBytes(StandardCharsets.UTF_8));
            input.flush();
        }
    }

    @Test
    void aBudgetHoldsAcrossFourProcessesOf32ThreadsEach() throws Exception {
        BigDecimal cost = new BigDecimal("0.0123");
        BigDecimal limit = new BigDecimal("5.00");
        List<Instance> fleet = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            fleet.add(new Instance("spend", RedisTests.URL, prefix, "32", cost.toPlainString(), limit.toPlainString()));
        }
        for (Instance instance : fleet) {
            instance.await("READY");
        }
        Instant day = Instant.now();
        for (Instance instance : fleet) {
            instance.send("GO");
        }
        long answered = 0;
        for (Instance instance : fleet) {
            Matcher m = RESULT.matcher(instance.await("RESULT"));
            assertThat(m.matches()).isTrue();
            assertThat(m.group(2))
                    .as("calls that failed otherwise than by the budget")
                    .isEqualTo("0");
            assertThat(m.group(3)).as("requests answered without Redis").isEqualTo("0");
            answered += Long.parseLong(m.group(1));
            assertThat(instance.process.waitFor(20, TimeUnit.SECONDS)).isTrue();
        }
        BigDecimal spent = cost.multiply(BigDecimal.valueOf(answered));
        // What the brief of shared budgets promises: at most one call's cost past the limit per instance.
        assertThat(spent).isLessThanOrEqualTo(limit.add(cost.multiply(BigDecimal.valueOf(4))));
        // What holding back each call's expected cost gives: the limit is reached, and passed by one call at
        // most, across all 128 threads: 406 calls spend 4.9938, so the 407th is the last let through.
        assertThat(spent).isGreaterThanOrEqualTo(limit).isLessThan(limit.add(cost));
        assertThat(answered).isEqualTo(407);
        try (RedisSharedState reader =
                RedisSharedState.builder(RedisTests.URL).prefix(prefix).build()) {
            long window = Math.floorDiv(day.toEpochMilli(), Duration.ofDays(1).toMillis());
            long units =
                    reader.get("fleet:budget:fleet-daily:" + Duration.ofDays(1).toMillis() + ":" + window);
            assertThat(SharedState.usd(units))
                    .as("the counter holds the receipts' sum")
                    .isEqualByComparingTo(spent);
        }
    }

    @Test
    void theSlotsOfAKilledProcessComeFreeWhenTheirLeasesLapse() throws Exception {
        Instance holder = new Instance("hold", RedisTests.URL, prefix, "8000");
        holder.await("HELD");
        try (RedisSharedState state =
                        RedisSharedState.builder(RedisTests.URL).prefix(prefix).build();
                HybridClient client = FleetInstance.client(state)
                        .member(
                                "m",
                                new FixedCostClient("m", BigDecimal.ZERO),
                                MemberOptions.builder().maxInFlight(2).build())
                        .build()) {
            assertThatThrownBy(() -> client.chat(ChatRequest.of("x")))
                    .isInstanceOf(CapacityExceededException.class)
                    .satisfies(e -> assertThat(((CapacityExceededException) e)
                                    .partialReceipt()
                                    .orElseThrow()
                                    .attempts()
                                    .get(0)
                                    .error())
                            .isEqualTo("no free slot: 0/2 in flight here, 2/2 across instances"));
            holder.process.destroyForcibly();
            assertThat(holder.process.waitFor(10, TimeUnit.SECONDS)).isTrue();
            // Killed, it released nothing: its two leases are still there.
            assertThat(state.slotsHeld("fleet:slots:m")).isEqualTo(2);
            // Its two leases were taken a moment apart, so they lapse a moment apart: wait for both, then a call
            // gets a slot and gives it back. (The lease is long enough for this process to start and make its
            // first call on a loaded machine while both are still held.)
            RedisTests.await(30, "the dead process's leases to lapse", () -> state.slotsHeld("fleet:slots:m") == 0);
            assertThat(client.chat(ChatRequest.of("x")).text()).isEqualTo("from m");
            assertThat(state.slotsHeld("fleet:slots:m")).isZero();
            assertThat(client.sharedStateStatus().fallbacks()).isZero();
        }
    }
}
