package dev.hybridinference.core;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.InferenceListener.AttemptStart;
import dev.hybridinference.core.RecordingListenerFactory.Built;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderContext;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import dev.hybridinference.core.spi.VirtualTime;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Listeners through the loader: one given to {@link InferenceClients.Loader#listener}, and those the
 * configuration's {@code listeners} list and {@code ledger} section build through a listener factory (the
 * test factories {@code recording} and {@code broken}); which of them the loaded client closes, and when.
 */
@Timeout(30)
class InferenceClientsListenerTest {
    private final RecordingListener heard = new RecordingListener();

    @BeforeEach
    void reset() {
        RecordingListenerFactory.reset();
    }

    /** A provider that answers "ok" and writes its close down next to the listeners'. */
    private static final class ClosingProvider extends AbstractProviderClient {
        ClosingProvider(ProviderContext ctx) {
            super(ctx.id(), "closing", DeploymentKind.SERVER, Pricing.FREE, ctx.ledger(), ctx.clock());
        }

        @Override
        protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
            return ProviderResult.builder()
                    .text("ok")
                    .finishReason(FinishReason.STOP)
                    .usage(new Usage(1, 1, 0))
                    .model("m")
                    .build();
        }

        @Override
        protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
            throw new UnsupportedOperationException("no streams here");
        }

        @Override
        protected void doClose() {
            RecordingListenerFactory.CLOSED.add("provider " + id());
        }
    }

    private static InferenceClients.Loader loader() {
        return InferenceClients.loader().env(Map.of());
    }

    private static InferenceClients.Loader closing() {
        return loader().providerFactory(ClosingProvider::new);
    }

    private static String error(InferenceClients.Loader loader, String yaml) {
        try (InferenceClient c = loader.load(yaml)) {
            throw new AssertionError("expected a ConfigurationException, got " + c.info());
        } catch (ConfigurationException e) {
            return e.getMessage();
        }
    }

    private static RecordingListenerFactory.Named built(String name) {
        return RecordingListenerFactory.BUILT.stream()
                .map(Built::listener)
                .filter(l -> l.name().equals(name))
                .findFirst()
                .orElseThrow(() -> new AssertionError("no listener " + name + " was built"));
    }

    // ---- a listener given to the loader ---------------------------------------------------------

    @Test
    void aListenerGivenToTheLoaderTurnsASingleProviderIntoACompositeOfOneThatTellsIt() {
        String yaml = "providers:\n  main: {type: echo}\n";
        try (InferenceClient plain = loader().load(yaml)) {
            assertThat(plain).as("no listener: the provider itself").isNotInstanceOf(HybridClient.class);
        }
        try (InferenceClient c = loader().listener(heard).load(yaml)) {
            assertThat(c).isInstanceOf(HybridClient.class);
            assertThat(((HybridClient) c).listeners()).containsExactly(heard);

            ChatResponse r = c.chat(ChatRequest.of("hello there"));
            assertThat(r.text()).isEqualTo("hello there");
            assertThat(heard.names()).containsExactly("callStarted", "attemptStarted", "attemptEnded", "completed");
            InferenceListener.Call call = heard.events().get(0).call();
            assertThat(call.clientId()).isEqualTo("main");
            assertThat(heard.only("attemptStarted", AttemptStart.class).member())
                    .isEqualTo("main");
            assertThat(r.receipt().id()).isEqualTo(call.id());
            assertThat(heard.only("completed", Receipt.class)).isSameAs(r.receipt());
        }
    }

    @Test
    void aListenerGivenToTheLoaderStaysTheCallersAndIsNotClosed() {
        RecordingListenerFactory.Closing mine = new RecordingListenerFactory.Closing("mine");
        try (InferenceClient c = closing().listener(mine).load("providers:\n  main: {type: any}\n")) {
            c.chat(ChatRequest.of("hi"));
            assertThat(mine.names()).contains("completed");
        }
        try (InferenceClient c = closing()
                .listener(mine)
                .load("providers:\n  a: {type: any}\n  b: {type: any}\nrouting:\n  tiers: {t: [a, b]}\n")) {
            c.chat(ChatRequest.of("hi"));
        }
        assertThat(RecordingListenerFactory.CLOSED)
                .containsExactly("provider main", "provider a", "provider b")
                .doesNotContain("listener mine");
    }

    // ---- listeners from configuration -----------------------------------------------------------

    @Test
    void theListenersSectionBuildsEachListenerFromItsOwnSectionAfterTheLoadersOwn() {
        CostLedger ledger = new CostLedger();
        VirtualTime time = new VirtualTime();
        String yaml = "providers:\n  main: {type: echo}\n"
                + "listeners:\n"
                + "  - {type: recording, name: audit}\n"
                + "  - type: recording\n"
                + "    name: quiet\n"
                + "    closeable: false\n";
        try (InferenceClient c =
                loader().ledger(ledger).timeSource(time).listener(heard).load(yaml)) {
            assertThat(RecordingListenerFactory.BUILT).hasSize(2);
            Built audit = RecordingListenerFactory.BUILT.get(0);
            assertThat(audit.context().config().path()).isEqualTo("listeners[0]");
            assertThat(audit.listener().name()).isEqualTo("audit");
            assertThat(audit.context().ledger()).isSameAs(ledger);
            assertThat(audit.context().time()).isSameAs(time);
            Built quiet = RecordingListenerFactory.BUILT.get(1);
            assertThat(quiet.context().config().path()).isEqualTo("listeners[1]");
            assertThat(quiet.listener()).isNotInstanceOf(AutoCloseable.class);

            assertThat(((HybridClient) c).listeners()).containsExactly(heard, audit.listener(), quiet.listener());
            c.chat(ChatRequest.of("hi"));
            for (RecordingListener l : List.of(heard, audit.listener(), quiet.listener())) {
                assertThat(l.names()).containsExactly("callStarted", "attemptStarted", "attemptEnded", "completed");
            }
        }
    }

    @Test
    void aLedgerSectionBuildsAListenerToo() {
        CostLedger ledger = new CostLedger();
        String yaml = "providers:\n  main: {type: echo}\n"
                + "listeners: [{type: recording, name: metrics}]\n"
                + "ledger: {type: recording, name: spend}\n";
        try (InferenceClient c = loader().ledger(ledger).load(yaml)) {
            RecordingListenerFactory.Named spend = built("spend");
            Built section = RecordingListenerFactory.BUILT.get(1);
            assertThat(section.listener()).isSameAs(spend);
            assertThat(section.context().config().path()).isEqualTo("ledger");
            assertThat(section.context().ledger()).isSameAs(ledger);
            assertThat(((HybridClient) c).listeners()).containsExactly(built("metrics"), spend);

            Receipt r = c.chat(ChatRequest.of("hi")).receipt();
            assertThat(spend.only("completed", Receipt.class)).isSameAs(r);
        }
    }

    @Test
    void aListenerFromConfigurationClosesWithTheClientAfterItsMembers() {
        try (InferenceClient c =
                closing().load("providers:\n  main: {type: any}\nlisteners: [{type: recording, name: audit}]\n")) {
            c.chat(ChatRequest.of("hi"));
            assertThat(RecordingListenerFactory.CLOSED).isEmpty();
        }
        assertThat(RecordingListenerFactory.CLOSED).containsExactly("provider main", "listener audit");

        RecordingListenerFactory.reset();
        String routed = "providers:\n  a: {type: any}\n  b: {type: any}\n"
                + "routing:\n  tiers: {t: [a, b]}\n"
                + "listeners: [{type: recording, name: audit}, {type: recording, name: quiet, closeable: false}]\n"
                + "ledger: {type: recording, name: spend}\n";
        try (InferenceClient c = closing().load(routed)) {
            c.chat(ChatRequest.of("hi"));
        }
        assertThat(RecordingListenerFactory.CLOSED)
                .containsExactly("provider a", "provider b", "listener audit", "listener spend");
    }

    // ---- errors ---------------------------------------------------------------------------------

    @Test
    void anUnknownListenerTypeIsNamedWithItsPathAndTheTypesThereAre() {
        String message = error(
                closing(),
                "providers:\n  main: {type: any}\nlisteners:\n  - {type: recording, name: a}\n"
                        + "  - {type: otel-exporter}\n");
        assertThat(message)
                .startsWith("listeners[1].type: unknown listener type \"otel-exporter\";"
                        + " types on the classpath: broken, recording");
        // What was built before the error is closed: the provider, and the listener before it.
        assertThat(RecordingListenerFactory.CLOSED).containsExactlyInAnyOrder("provider main", "listener a");
    }

    @Test
    void aListenerSectionIsCheckedWithKeyPaths() {
        String providers = "providers:\n  main: {type: echo}\n";
        assertThat(error(loader(), providers + "listeners: [{type: recording, name: a, colour: red}]\n"))
                .startsWith("listeners[0].colour: ");
        assertThat(error(loader(), providers + "listeners: [{type: recording}]\n"))
                .startsWith("listeners[0].name: is required");
        assertThat(error(loader(), providers + "listeners: [{name: a}]\n")).startsWith("listeners[0].type: ");
        assertThat(error(loader(), providers + "listeners: [recording]\n"))
                .isEqualTo("listeners[0]: expected a mapping with a type");
        assertThat(error(loader(), providers + "ledger: {type: nope}\n"))
                .startsWith("ledger.type: unknown listener type \"nope\"");
    }

    @Test
    void aFailingListenerFactoryClosesTheProvidersAndListenersAlreadyBuiltButNotTheCallers() {
        RecordingListenerFactory.Closing mine = new RecordingListenerFactory.Closing("mine");
        String yaml = "providers:\n  a: {type: any}\n  b: {type: any}\n"
                + "routing:\n  tiers: {t: [a, b]}\n"
                + "listeners: [{type: recording, name: first}, {type: broken}]\n";
        assertThat(error(closing().listener(mine), yaml)).isEqualTo("listeners[1]: the spend log cannot be reached");
        assertThat(RecordingListenerFactory.CLOSED)
                .containsExactlyInAnyOrder("provider a", "provider b", "listener first");
    }

    @Test
    void aRoutingErrorAfterTheListenersWereBuiltClosesThemButNotTheCallers() {
        RecordingListenerFactory.Closing mine = new RecordingListenerFactory.Closing("mine");
        String yaml = "providers:\n  a: {type: any}\n"
                + "routing:\n  tiers: {t: [nobody]}\n"
                + "listeners: [{type: recording, name: audit}]\n";
        assertThat(error(closing().listener(mine), yaml)).startsWith("routing");
        assertThat(RecordingListenerFactory.CLOSED).containsExactlyInAnyOrder("provider a", "listener audit");

        RecordingListenerFactory.reset();
        String single = "providers:\n  a: {type: any}\n"
                + "retry: {maxAttempts: 0}\n"
                + "listeners: [{type: recording, name: audit}]\n";
        assertThat(error(closing().listener(mine), single)).startsWith("retry");
        assertThat(RecordingListenerFactory.CLOSED).containsExactlyInAnyOrder("provider a", "listener audit");
    }
}
