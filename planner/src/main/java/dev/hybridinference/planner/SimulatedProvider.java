package dev.hybridinference.planner;

import dev.hybridinference.core.CancelledException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.ColdStart;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.routing.TierRule;
import dev.hybridinference.core.spi.AbstractProviderClient;
import dev.hybridinference.core.spi.CallContext;
import dev.hybridinference.core.spi.ProviderResult;
import dev.hybridinference.core.spi.ProviderStream;
import dev.hybridinference.core.spi.VirtualTime;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;

/**
 * A platform simulated on {@link VirtualTime} after a {@link Deployment}: the stand-in the planner puts where
 * a real provider would be. It is a real provider to the core, built on {@link AbstractProviderClient}, so
 * receipts, metering, pricing and the ledger are the production code's; only the platform is modelled.
 *
 * <p>Answers {@link #chatAsync} only: a blocking call could not wait on virtual time. Confined to the thread
 * that runs the virtual time.
 */
final class SimulatedProvider extends AbstractProviderClient {
    private static final Duration RETRY_AFTER = Duration.ofSeconds(1);

    private final Deployment deployment;
    private final VirtualTime time;
    private final boolean billsCompute;
    private final String model;
    private final List<Instance> instances = new ArrayList<>();
    private final ArrayDeque<Pending> waiting = new ArrayDeque<>();
    private long coldWaits;
    private long refused;
    private long busySlotNanos;

    SimulatedProvider(
            String id, String model, Pricing pricing, Deployment deployment, CostLedger ledger, VirtualTime time) {
        super(id, "simulated", kindOf(deployment), pricing, ledger, time);
        this.deployment = Objects.requireNonNull(deployment, "deployment");
        this.time = time;
        this.model = Objects.requireNonNull(model, "model");
        this.billsCompute = pricing instanceof Pricing.PerComputeTime || pricing instanceof Pricing.PerGbSecond;
        if (deployment.kind() != Deployment.Kind.API) {
            int always =
                    deployment.kind() == Deployment.Kind.SERVER ? deployment.maxInstances() : deployment.minInstances();
            for (int i = 0; i < always; i++) {
                instances.add(new Instance(time.nanoTime(), true));
            }
        }
    }

    private static DeploymentKind kindOf(Deployment d) {
        return d.kind() == Deployment.Kind.SERVER ? DeploymentKind.SERVER : DeploymentKind.SERVERLESS;
    }

    /** The deployment it simulates. */
    Deployment deployment() {
        return deployment;
    }

    /** Requests that waited for an instance to start (keep-warm pings not counted). */
    long coldWaits() {
        return coldWaits;
    }

    /** Slot time requests spent running (not waiting), in nanoseconds. */
    long busySlotNanos() {
        return busySlotNanos;
    }

    /** Requests refused (throttled, or the queue full). */
    long refused() {
        return refused;
    }

    @Override
    protected List<String> models() {
        return List.of(model);
    }

    @Override
    protected ClientInfo.ColdStartProfile coldStartProfile() {
        return deployment.kind() == Deployment.Kind.SERVERLESS
                ? new ClientInfo.ColdStartProfile(true, deployment.idleTimeout(), deployment.minInstances())
                : ClientInfo.ColdStartProfile.NONE;
    }

    @Override
    protected ProviderResult doChat(ChatRequest request, CallContext ctx) {
        throw new UnsupportedOperationException(id() + ": a simulated provider answers chatAsync only");
    }

    @Override
    protected ProviderStream doStream(ChatRequest request, CallContext ctx) {
        throw new UnsupportedOperationException(id() + ": a simulated provider answers chatAsync only");
    }

    @Override
    protected CompletableFuture<ProviderResult> doChatAsync(ChatRequest request, CallContext ctx) {
        long in = Math.max(1, TierRule.estimatePromptTokens(request));
        long out = Math.max(1, request.maxTokens().orElse(1));
        Pending p =
                new Pending(in, out, "keep-warm".equals(request.options().tags().get("purpose")));
        ctx.onCancel(() -> {
            if (waiting.remove(p)) {
                p.future.completeExceptionally(new CancelledException("call cancelled", id(), null, 0, null, null));
            }
        });
        if (deployment.kind() == Deployment.Kind.API) {
            start(p, null, time.nanoTime(), null);
        } else {
            admit(p);
        }
        return p.future;
    }

    /** Finds the request a slot: a free one, one on a starting instance, a new instance, the queue, or none. */
    private void admit(Pending p) {
        long now = time.nanoTime();
        reapIdle(now);
        Instance best = null;
        Instance starting = null;
        for (Instance i : instances) {
            if (i.busy >= deployment.concurrency()) {
                continue;
            }
            if (i.readyAt <= now) {
                // Fill the busiest instance first, so that the others can go idle and stop.
                if (best == null || i.busy > best.busy) {
                    best = i;
                }
            } else if (starting == null || i.readyAt < starting.readyAt) {
                starting = i;
            }
        }
        if (best != null) {
            best.busy++;
            start(p, best, now, null);
        } else if (starting != null) {
            // It waits for an instance another request started: part of that cold start, not one of its own.
            starting.busy++;
            coldWaits += p.ping ? 0 : 1;
            start(p, starting, starting.readyAt, null);
        } else if (deployment.kind() == Deployment.Kind.SERVERLESS && instances.size() < deployment.maxInstances()) {
            Instance i = new Instance(now + deployment.startupTime().toNanos(), false);
            instances.add(i);
            i.busy++;
            coldWaits += p.ping ? 0 : 1;
            start(p, i, i.readyAt, ColdStart.observed(deployment.startupTime()));
        } else if (waiting.size() < deployment.queueLimit()) {
            waiting.add(p);
        } else {
            refused++;
            p.future.completeExceptionally(new RateLimitedException(
                    (deployment.kind() == Deployment.Kind.SERVERLESS ? "throttled" : "overloaded") + ": all "
                            + instances.size() + " instances busy and " + waiting.size() + " requests waiting",
                    id(),
                    null,
                    429,
                    RETRY_AFTER,
                    null));
        }
    }

    /** Stops the instances idle for the deployment's idle timeout, down to its minimum. */
    private void reapIdle(long now) {
        if (deployment.kind() != Deployment.Kind.SERVERLESS || instances.size() <= deployment.minInstances()) {
            return;
        }
        long idle = deployment.idleTimeout().toNanos();
        for (int k = instances.size() - 1; k >= 0 && instances.size() > deployment.minInstances(); k--) {
            Instance i = instances.get(k);
            if (!i.pinned && i.busy == 0 && i.readyAt <= now && now - i.lastEnd >= idle) {
                instances.remove(k);
            }
        }
    }

    /** Runs the request from {@code at} on {@code instance} (none for a per-token platform). */
    private void start(Pending p, Instance instance, long at, ColdStart coldStart) {
        Duration service = deployment.serviceTime(p.in, p.out);
        long end = at + service.toNanos();
        busySlotNanos += service.toNanos();
        time.schedule(Duration.ofNanos(end - time.nanoTime()), () -> finish(p, instance, service, coldStart));
    }

    private void finish(Pending p, Instance instance, Duration service, ColdStart coldStart) {
        if (instance != null) {
            instance.busy--;
            instance.lastEnd = time.nanoTime();
            Pending next = waiting.poll();
            if (next != null) {
                instance.busy++;
                start(next, instance, time.nanoTime(), null);
            }
        }
        ProviderResult.Builder r = ProviderResult.builder()
                .usage(new Usage(p.in, p.out, 0))
                .finishReason(FinishReason.STOP)
                .model(model)
                .coldStart(coldStart == null ? ColdStart.NONE : coldStart);
        if (billsCompute) {
            // A per-use platform bills the request's own processing, not its wait for a start or a slot.
            r.computeTime(service);
        }
        p.future.complete(r.build());
    }

    /** A request on its way. */
    private static final class Pending {
        final long in;
        final long out;
        /** A keep-warm ping: not one of the traffic's requests, so not counted among them. */
        final boolean ping;

        final CompletableFuture<ProviderResult> future = new CompletableFuture<>();

        Pending(long in, long out, boolean ping) {
            this.in = in;
            this.out = out;
            this.ping = ping;
        }
    }

    /** One instance: when it is ready, how many requests it runs, when its last one ended. */
    private static final class Instance {
        final long readyAt;
        final boolean pinned;
        int busy;
        long lastEnd;

        Instance(long readyAt, boolean pinned) {
            this.readyAt = readyAt;
            this.pinned = pinned;
            this.lastEnd = readyAt;
        }
    }
}
