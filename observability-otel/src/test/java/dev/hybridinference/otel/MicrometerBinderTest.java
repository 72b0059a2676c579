package dev.hybridinference.otel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.routing.MemberOptions;
import dev.hybridinference.core.routing.RetryPolicy;
import dev.hybridinference.core.routing.StandardRoutingPolicy;
import dev.hybridinference.core.spi.VirtualTime;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class MicrometerBinderTest {
    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    private final MicrometerBinder binder =
            MicrometerBinder.builder().metricTags("tenant").build();

    {
        binder.bindTo(registry);
    }

    @AfterEach
    void close() {
        binder.close();
        registry.close();
    }

    private static ChatRequest request() {
        return ChatRequest.builder()
                .model("llama")
                .user("the confidential prompt")
                .options(RequestOptions.builder()
                        .tag("tenant", "acme")
                        .tag("user", "u-123")
                        .sessionId("session-42")
                        .build())
                .build();
    }

    private HybridClient.Builder client() {
        return HybridClient.builder()
                .listener(binder)
                .sleeper(d -> {})
                .retry(new RetryPolicy(2, Duration.ZERO, Duration.ZERO, 1.0, 0, Duration.ZERO, Duration.ofSeconds(1)));
    }

    @Test
    void aCallIsTimedWithItsTokensAndCostUnderLowCardinalityTags() {
        Receipt receipt;
        try (HybridClient c =
                client().member("main", TestMember.perToken("main")).build()) {
            receipt = c.chat(request()).receipt();
        }
        Timer duration = registry.get("gen_ai.client.operation.duration")
                .tag("gen_ai.operation.name", "chat")
                .tag("gen_ai.provider.name", "main")
                .tag("gen_ai.request.model", "llama")
                .tag("gen_ai.response.model", "model-main")
                .tag("server.address", "10.0.0.7")
                .tag("server.port", "8000")
                .tag("error.type", "none")
                .tag("hybrid_inference.deployment_kind", "server")
                .tag("hybrid_inference.tier", "none")
                .tag("hybrid_inference.spilled_over", "false")
                .tag("hybrid_inference.fell_back", "false")
                .tag("hybrid_inference.cold_start.observed", "false")
                .tag("hybrid_inference.tag.tenant", "acme")
                .timer();
        assertThat(duration.count()).isEqualTo(1);
        assertThat(duration.totalTime(TimeUnit.NANOSECONDS))
                .isEqualTo((double) receipt.totalTime().toNanos());

        DistributionSummary in = registry.get("gen_ai.client.token.usage")
                .tag("gen_ai.token.type", "input")
                .summary();
        DistributionSummary out = registry.get("gen_ai.client.token.usage")
                .tag("gen_ai.token.type", "output")
                .summary();
        assertThat(in.totalAmount()).isEqualTo(10);
        assertThat(out.totalAmount()).isEqualTo(5);
        assertThat(in.getId().getBaseUnit()).isEqualTo("tokens");

        Counter cost = registry.get("hybrid_inference.cost")
                .tag("gen_ai.provider.name", "main")
                .tag("hybrid_inference.cost_estimated", "false")
                .tag("hybrid_inference.tag.tenant", "acme")
                .counter();
        assertThat(cost.count()).isCloseTo(0.00002, within(1e-12));
        assertThat(cost.getId().getBaseUnit()).isEqualTo("usd");
        assertThat(registry.get("hybrid_inference.attempts")
                        .tag("hybrid_inference.member", "main")
                        .tag("hybrid_inference.attempt.outcome", "succeeded")
                        .counter()
                        .count())
                .isEqualTo(1);
        assertThat(registry.find("gen_ai.client.operation.time_to_first_chunk").timer())
                .isNull();
        assertLowCardinality(receipt.id());
    }

    /** No meter carries a session id, a call id, an unlisted tag or the prompt; meters of a name share keys. */
    private void assertLowCardinality(String... callIds) {
        Map<String, Set<String>> keysByName = new HashMap<>();
        for (Meter m : registry.getMeters()) {
            Set<String> keys =
                    m.getId().getTags().stream().map(Tag::getKey).collect(Collectors.toCollection(TreeSet::new));
            assertThat(keys).doesNotContain("hybrid_inference.tag.user", "gen_ai.conversation.id");
            List<String> values =
                    m.getId().getTags().stream().map(Tag::getValue).toList();
            assertThat(values).doesNotContain("session-42", "u-123", "the confidential prompt");
            for (String id : callIds) {
                assertThat(values).doesNotContain(id);
            }
            Set<String> before = keysByName.putIfAbsent(m.getId().getName(), keys);
            if (before != null) {
                assertThat(keys).as("tag keys of %s", m.getId().getName()).isEqualTo(before);
            }
        }
    }

    @Test
    void aFailureAfterAFallbackKeepsTheTagKeysOfASuccess() {
        TestMember first = TestMember.perToken("first")
                .thenFail(new ProviderUnavailableException("overloaded", "first", null, 503, null, null));
        TestMember second = TestMember.perToken("second")
                .thenFail(new InvalidRequestException("bad request", "second", null, 400, null, null));
        try (HybridClient c =
                client().member("first", first).member("second", second).build()) {
            assertThatThrownBy(() -> c.chat(request())).isInstanceOf(InvalidRequestException.class);
            c.chat(request()); // first answers now
        }
        Timer failed = registry.get("gen_ai.client.operation.duration")
                .tag("error.type", "InvalidRequestException")
                .tag("gen_ai.provider.name", "second")
                .tag("gen_ai.response.model", "none")
                .tag("hybrid_inference.fell_back", "true")
                .timer();
        assertThat(failed.count()).isEqualTo(1);
        assertThat(registry.get("gen_ai.client.operation.duration")
                        .tag("error.type", "none")
                        .tag("gen_ai.provider.name", "first")
                        .timer()
                        .count())
                .isEqualTo(1);
        assertThat(registry.get("hybrid_inference.attempts")
                        .tag("hybrid_inference.member", "first")
                        .tag("hybrid_inference.attempt.outcome", "failed")
                        .tag("error.type", "ProviderUnavailableException")
                        .counter()
                        .count())
                .isEqualTo(1);
        assertLowCardinality();
    }

    @Test
    void aStreamIsTimedToItsFirstChunk() {
        try (HybridClient c =
                        client().member("main", TestMember.perToken("main")).build();
                ChatStream s = c.stream(request())) {
            while (s.hasNext()) {
                s.next();
            }
        }
        Timer first = registry.get("gen_ai.client.operation.time_to_first_chunk")
                .tag("gen_ai.provider.name", "main")
                .timer();
        Timer total = registry.get("gen_ai.client.operation.duration").timer();
        assertThat(first.count()).isEqualTo(1);
        assertThat(first.totalTime(TimeUnit.NANOSECONDS))
                .isPositive()
                .isLessThanOrEqualTo(total.totalTime(TimeUnit.NANOSECONDS));
        assertLowCardinality();
    }

    @Test
    void aSpilloverIsCountedOnceByPrimary() {
        StandardRoutingPolicy policy = StandardRoutingPolicy.builder()
                .tier("t", List.of("primary"))
                .spillover("primary", List.of("burst"), Duration.ZERO)
                .build();
        try (HybridClient c = client().member(
                        "primary",
                        TestMember.perToken("primary").waiting(10),
                        MemberOptions.builder().maxWaiting(4).build())
                .member("burst", TestMember.perToken("burst"))
                .policy(policy)
                .build()) {
            c.chat(request());
        }
        assertThat(registry.get("hybrid_inference.spillovers")
                        .tag("hybrid_inference.primary", "primary")
                        .counter()
                        .count())
                .isEqualTo(1);
        assertThat(registry.get("gen_ai.client.operation.duration")
                        .tag("hybrid_inference.spilled_over", "true")
                        .tag("hybrid_inference.tier", "t")
                        .tag("gen_ai.provider.name", "burst")
                        .timer()
                        .count())
                .isEqualTo(1);
    }

    @Test
    void capacityGaugesReadTheLedgerAndLeaveWithClose() {
        VirtualTime time = new VirtualTime(Instant.parse("2026-01-01T00:00:00Z"));
        CostLedger ledger = new CostLedger(time.clock(), Duration.ofDays(1));
        ledger.registerCapacity("vllm", new Pricing.PerInstanceHour(new BigDecimal("3.60"), 1));
        time.advance(Duration.ofSeconds(1000));
        ledger.record(Receipt.builder()
                .providerId("vllm")
                .deploymentKind(DeploymentKind.SERVER)
                .startedAt(time.clock().instant())
                .cost(new BigDecimal("0.25"))
                .build());
        MicrometerBinder gauges =
                MicrometerBinder.builder().capacity(ledger, List.of("vllm")).build();
        gauges.bindTo(registry);
        gauges.bindTo(registry); // once per registry
        assertThat(registry.get("hybrid_inference.capacity.billed").gauges()).hasSize(1);
        assertThat(registry.get("hybrid_inference.capacity.billed")
                        .tag("gen_ai.provider.name", "vllm")
                        .gauge()
                        .value())
                .isCloseTo(1.0, within(1e-12));
        assertThat(registry.get("hybrid_inference.capacity.attributed").gauge().value())
                .isCloseTo(0.25, within(1e-12));
        assertThat(registry.get("hybrid_inference.capacity.idle").gauge().value())
                .isCloseTo(0.75, within(1e-12));
        time.advance(Duration.ofSeconds(1000)); // read when the registry reads them
        assertThat(registry.get("hybrid_inference.capacity.idle").gauge().value())
                .isCloseTo(1.75, within(1e-12));
        gauges.close();
        assertThat(registry.find("hybrid_inference.capacity.billed").gauge()).isNull();
    }

    @Test
    void callsOfOneKindShareTheirMetersAndEachListedTagValueHasItsOwn() {
        ChatRequest beta = request().toBuilder()
                .options(RequestOptions.builder().tag("tenant", "beta").build())
                .build();
        try (HybridClient c =
                client().member("main", TestMember.perToken("main")).build()) {
            c.chat(request());
            c.chat(request());
            c.chat(beta);
        }
        assertThat(registry.get("gen_ai.client.operation.duration").timers()).hasSize(2);
        assertThat(registry.get("gen_ai.client.operation.duration")
                        .tag("hybrid_inference.tag.tenant", "acme")
                        .timer()
                        .count())
                .isEqualTo(2);
        assertThat(registry.get("hybrid_inference.cost")
                        .tag("hybrid_inference.tag.tenant", "beta")
                        .counter()
                        .count())
                .isCloseTo(0.00002, within(1e-12));
        assertThat(registry.get("gen_ai.client.token.usage")
                        .tag("gen_ai.token.type", "input")
                        .tag("hybrid_inference.tag.tenant", "acme")
                        .summary()
                        .totalAmount())
                .isEqualTo(20);
    }

    @Test
    void twoRegistriesBothCount() {
        SimpleMeterRegistry second = new SimpleMeterRegistry();
        binder.bindTo(second);
        try (HybridClient c =
                client().member("main", TestMember.perToken("main")).build()) {
            c.chat(request());
        }
        assertThat(registry.get("gen_ai.client.operation.duration").timer().count())
                .isEqualTo(1);
        assertThat(second.get("gen_ai.client.operation.duration").timer().count())
                .isEqualTo(1);
    }

    @Test
    void eventsBeforeBindingAreNotCounted() {
        MicrometerBinder unbound = MicrometerBinder.builder().build();
        try (HybridClient c = HybridClient.builder()
                .listener(unbound)
                .member("main", TestMember.perToken("main"))
                .build()) {
            c.chat(request());
            SimpleMeterRegistry later = new SimpleMeterRegistry();
            unbound.bindTo(later);
            c.chat(request());
            assertThat(later.get("gen_ai.client.operation.duration").timer().count())
                    .isEqualTo(1);
        }
    }
}
