package dev.hybridinference.benchmarks;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.routing.MemberOptions;
import dev.hybridinference.core.routing.Route;
import dev.hybridinference.core.routing.StandardRoutingPolicy;
import dev.hybridinference.core.routing.TierRule;
import java.math.BigDecimal;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The composite client's own cost: five no-op members, tiering rules, spillover from a capacity-limited
 * primary and fallback candidates. {@code direct} calls a member without the composite client, the
 * baseline the others are compared with.
 */
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class HybridRoutingBenchmark {
    /** Five members and two composite clients: one whose first candidate answers, one whose fails. */
    @State(Scope.Benchmark)
    public static class Env {
        HybridClient hybrid;
        HybridClient withFallback;
        StandardRoutingPolicy policy;
        NoOpMember direct;
        ChatRequest request;

        /** Builds the clients. */
        @Setup(Level.Trial)
        public void setUp() {
            direct = new NoOpMember("direct", Pricing.FREE, false);
            policy = policy();
            hybrid = build(false);
            withFallback = build(true);
            request = ChatRequest.builder()
                    .user("Summarize the trade-offs of serverless inference in three sentences.")
                    .maxTokens(128)
                    .options(RequestOptions.builder().tag("tenant", "acme").build())
                    .build();
        }

        static StandardRoutingPolicy policy() {
            return StandardRoutingPolicy.builder()
                    .tier("small", List.of("vllm-main", "local", "serverless-small"))
                    .tier("large", List.of("serverless-large", "azure-large"))
                    .rule(TierRule.model("large-*", "large"))
                    .rule(TierRule.tag("feature", "legal", "large"))
                    .rule(TierRule.promptTokensAbove(4000, "large"))
                    .defaultTier("small")
                    .spillover("vllm-main", List.of("serverless-small"), Duration.ZERO)
                    .build();
        }

        private HybridClient build(boolean firstFails) {
            Pricing hourly = new Pricing.PerInstanceHour(new BigDecimal("4.10"), 2);
            Pricing tokens = new Pricing.PerToken(new BigDecimal("0.5"), new BigDecimal("1.5"), null);
            return HybridClient.builder()
                    .member(
                            "vllm-main",
                            new NoOpMember("vllm-main", hourly, firstFails),
                            MemberOptions.builder().maxInFlight(64).build())
                    .member("local", new NoOpMember("local", Pricing.FREE, false))
                    .member("serverless-small", new NoOpMember("serverless-small", tokens, false))
                    .member("serverless-large", new NoOpMember("serverless-large", tokens, false))
                    .member("azure-large", new NoOpMember("azure-large", tokens, false))
                    .policy(policy)
                    .circuitBreaker(Integer.MAX_VALUE, Duration.ofSeconds(1))
                    .build();
        }

        /** Closes the clients. */
        @TearDown(Level.Trial)
        public void tearDown() {
            hybrid.close();
            withFallback.close();
        }
    }

    /** The baseline: one member called directly. */
    @Benchmark
    public ChatResponse direct(Env env) {
        return env.direct.chat(env.request);
    }

    /** The routing decision alone. */
    @Benchmark
    public Route routeOnly(Env env) {
        return env.policy.route(env.request, env.hybrid.members());
    }

    /** A whole call through the composite client: route, slot, call, receipt, bookkeeping. */
    @Benchmark
    public ChatResponse hybrid(Env env) {
        return env.hybrid.chat(env.request);
    }

    /** A call whose first candidate fails and falls back to the next. */
    @Benchmark
    public ChatResponse hybridWithFallback(Env env) {
        return env.withFallback.chat(env.request);
    }
}
