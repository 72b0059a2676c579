package dev.hybridinference.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.routing.VirtualMember;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.PricingConfig;
import dev.hybridinference.core.spi.ProviderContext;
import dev.hybridinference.core.spi.TimeSource;
import dev.hybridinference.core.spi.VirtualTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A loader given a provider factory builds every provider with it, whatever the section's {@code type},
 * and routes, prices and records over what it returns; with a time source, the loaded client reads time
 * and sets its timers there.
 */
@Timeout(30)
class InferenceClientsProviderFactoryTest {
    /** The sections the function saw, in order. */
    private final List<ProviderContext> seen = new ArrayList<>();
    /** What it built, by provider. */
    private final Map<String, VirtualMember> built = new LinkedHashMap<>();

    /**
     * A stand-in for every platform: reads {@code latency}, {@code rateLimitedFirst} and {@code pricing}
     * from the section and refuses any other key, as a provider's factory does.
     */
    private Function<ProviderContext, InferenceClient> standIns(TimeSource time) {
        return ctx -> {
            seen.add(ctx);
            ConfigNode c = ctx.config();
            c.allowOnly(Set.of("type", "latency", "rateLimitedFirst", "pricing"));
            VirtualMember m = new VirtualMember(ctx.id(), PricingConfig.read(c, "free", 1), ctx.ledger(), time);
            c.duration("latency").ifPresent(m::latency);
            c.duration("rateLimitedFirst").ifPresent(m::thenRateLimited);
            built.put(ctx.id(), m);
            return m;
        };
    }

    private static String error(InferenceClients.Loader loader, String yaml) {
        try (InferenceClient c = loader.load(yaml)) {
            throw new AssertionError("expected a ConfigurationException, got " + c.info());
        } catch (ConfigurationException e) {
            return e.getMessage();
        }
    }

    @Test
    void everyProviderSectionGoesToTheFunctionAndRoutingRunsOverWhatItBuilt() {
        String yaml = "providers:\n"
                + "  a: {type: no-such-platform, latency: 0ms, capabilities: {tools: false}}\n"
                + "  b: {type: vllm, pricing: {type: per-token, inputPerMillion: 1, outputPerMillion: 1}}\n"
                + "routing:\n"
                + "  tiers: {main: [b, a]}\n";
        try (InferenceClient c = InferenceClients.loader()
                .env(Map.of())
                .providerFactory(standIns(TimeSource.system()))
                .load(yaml)) {
            // No factory of either type was looked up: the function built both, in document order.
            assertThat(seen).extracting(ProviderContext::id).containsExactly("a", "b");
            assertThat(seen.get(0).config().path()).isEqualTo("providers.a");
            assertThat(seen.get(0).config().string("type")).hasValue("no-such-platform");
            // The core's own keys were taken out before the function saw the section.
            assertThat(seen.get(0).config().has("capabilities")).isFalse();
            // One ledger for all: what every provider got is the loaded client's.
            CostLedger ledger = c.ledger().orElseThrow();
            assertThat(seen).allSatisfy(ctx -> assertThat(ctx.ledger()).isSameAs(ledger));

            assertThat(c).isInstanceOf(HybridClient.class);
            HybridClient hybrid = (HybridClient) c;
            assertThat(hybrid.member("a", VirtualMember.class)).isSameAs(built.get("a"));
            assertThat(hybrid.member("b", VirtualMember.class)).isSameAs(built.get("b"));
            assertThat(hybrid.members().get("a").options().tools()).hasValue(false);

            ChatResponse r = c.chat(ChatRequest.of("hi"));
            assertThat(r.text()).isEqualTo("from b");
            assertThat(ledger.totals().provider("b")).isEqualByComparingTo("0.000015");
        }
        assertThat(built.values()).allMatch(VirtualMember::closed);
    }

    @Test
    void aSectionWithoutATypeIsStillRefusedAtItsTypeKey() {
        String yaml = "providers:\n"
                + "  a: {type: sim}\n"
                + "  b: {latency: 1s}\n"
                + "routing:\n"
                + "  tiers: {main: [a, b]}\n";
        String message =
                error(InferenceClients.loader().env(Map.of()).providerFactory(standIns(TimeSource.system())), yaml);
        assertThat(message).startsWith("providers.b.type: ");
        assertThat(seen).extracting(ProviderContext::id).containsExactly("a");
        assertThat(built.get("a").closed())
                .as("the provider built before is closed")
                .isTrue();
    }

    @Test
    void whatTheFunctionThrowsIsAnErrorAtTheProvidersPathAndTheProvidersBuiltSoFarAreClosed() {
        String yaml = "providers:\n"
                + "  a: {type: sim}\n"
                + "  b: {type: sim}\n"
                + "  c: {type: sim}\n"
                + "  d: {type: sim}\n"
                + "routing:\n"
                + "  tiers: {main: [a, b, c, d]}\n";
        Function<ProviderContext, InferenceClient> stands = standIns(TimeSource.system());
        Function<ProviderContext, InferenceClient> failsAtC = ctx -> {
            if (ctx.id().equals("c")) {
                throw new IllegalStateException("no simulated platform for c");
            }
            return stands.apply(ctx);
        };
        assertThatThrownBy(() -> InferenceClients.loader()
                        .env(Map.of())
                        .providerFactory(failsAtC)
                        .load(yaml))
                .isInstanceOfSatisfying(ConfigurationException.class, e -> {
                    assertThat(e.path()).isEqualTo("providers.c");
                    assertThat(e.getMessage()).isEqualTo("providers.c: no simulated platform for c");
                    assertThat(e.getCause()).isInstanceOf(IllegalStateException.class);
                });
        assertThat(built.keySet()).containsExactly("a", "b");
        assertThat(built.values()).allMatch(VirtualMember::closed);

        // Anything else it throws names its class; nothing but a ConfigurationException leaves the loader.
        built.clear();
        Function<ProviderContext, InferenceClient> breaksAtB = ctx -> {
            if (ctx.id().equals("b")) {
                throw new UnsupportedOperationException("not simulated");
            }
            return stands.apply(ctx);
        };
        assertThat(error(InferenceClients.loader().env(Map.of()).providerFactory(breaksAtB), yaml))
                .isEqualTo("providers.b: could not be loaded (UnsupportedOperationException: not simulated)");
        assertThat(built.get("a").closed()).isTrue();

        // A key the function refuses is named at its own path.
        built.clear();
        assertThat(error(
                        InferenceClients.loader().env(Map.of()).providerFactory(stands),
                        "providers:\n  a: {type: sim}\n  b: {type: sim, colour: blue}\n"
                                + "routing:\n  tiers: {main: [a, b]}\n"))
                .startsWith("providers.b.colour: ");
        assertThat(built.get("a").closed()).isTrue();

        // A function that builds nothing is refused at the section.
        built.clear();
        assertThat(error(
                        InferenceClients.loader()
                                .env(Map.of())
                                .providerFactory(ctx -> ctx.id().equals("a") ? stands.apply(ctx) : null),
                        yaml))
                .startsWith("providers.b: ");
        assertThat(built.get("a").closed()).isTrue();
    }

    @Test
    void withATimeSourceTheLoadedCompositeItsBackoffsAndItsLedgerRunOnIt() {
        VirtualTime time = new VirtualTime();
        String yaml = "providers:\n"
                + "  a: {type: sim, latency: 50ms, rateLimitedFirst: 2s,"
                + " pricing: {type: per-instance-hour, perHour: 3.60}}\n"
                + "  b: {type: sim}\n"
                + "routing:\n"
                + "  tiers: {main: [a]}\n"
                + "  retry: {maxAttempts: 3, initialBackoff: 100ms, jitter: 0}\n";
        try (InferenceClient c = InferenceClients.loader()
                .env(Map.of())
                .timeSource(time)
                .providerFactory(standIns(time))
                .load(yaml)) {
            assertThat(seen).allSatisfy(ctx -> assertThat(ctx.clock()).isSameAs(time.clock()));

            CompletableFuture<ChatResponse> f = c.chatAsync(ChatRequest.of("hi"));
            time.advance(Duration.ofMillis(50));
            assertThat(built.get("a").calls()).isEqualTo(1);
            // The composite waits out a's Retry-After of 2 s on the time source's timer.
            time.advance(Duration.ofSeconds(2).minusNanos(1));
            assertThat(built.get("a").calls()).isEqualTo(1);
            assertThat(f).isNotDone();
            time.advance(Duration.ofNanos(1).plusMillis(50));
            assertThat(f).isCompleted();

            Receipt r = f.join().receipt();
            assertThat(r.providerId()).isEqualTo("a");
            assertThat(r.startedAt()).isEqualTo(time.epoch());
            assertThat(r.totalTime()).isEqualTo(Duration.ofMillis(2100));
            // The ledger the loader made runs on the same clock: the capacity's uptime is virtual.
            assertThat(c.ledger().orElseThrow().capacity("a").orElseThrow().uptime())
                    .isEqualTo(Duration.ofMillis(2100));
        }
    }

    @Test
    void withATimeSourceAProviderUsedAloneWithRetriesWaitsOnItToo() {
        VirtualTime time = new VirtualTime();
        String yaml = "providers:\n"
                + "  solo: {type: sim, rateLimitedFirst: 3s}\n"
                + "retry: {maxAttempts: 2, initialBackoff: 100ms, jitter: 0}\n";
        try (InferenceClient c = InferenceClients.loader()
                .env(Map.of())
                .timeSource(time)
                .providerFactory(standIns(time))
                .load(yaml)) {
            assertThat(c).isInstanceOf(HybridClient.class);
            CompletableFuture<ChatResponse> f = c.chatAsync(ChatRequest.of("hi"));
            time.advance(Duration.ofSeconds(3).minusNanos(1));
            assertThat(f).isNotDone();
            time.advance(Duration.ofNanos(1));
            assertThat(f).isCompleted();
            assertThat(f.join().receipt().totalTime()).isEqualTo(Duration.ofSeconds(3));
            assertThat(built.get("solo").calls()).isEqualTo(2);
        }
    }
}
