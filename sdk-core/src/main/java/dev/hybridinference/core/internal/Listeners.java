package dev.hybridinference.core.internal;

import dev.hybridinference.core.BudgetExceededException;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.Receipt;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The listeners of one client, called in order, each isolated: what one throws is logged at warn the first
 * time for that listener and event, then at debug, and never reaches the call or the next listener. Internal.
 */
public final class Listeners {
    private static final Logger LOG = LoggerFactory.getLogger(Listeners.class);

    /** No listeners: callers check {@link #isEmpty()} and skip building events. */
    public static final Listeners NONE = new Listeners(List.of());

    private final List<InferenceListener> listeners;
    private final Set<String> warned = ConcurrentHashMap.newKeySet();

    private Listeners(List<InferenceListener> listeners) {
        this.listeners = listeners;
    }

    /** The dispatcher of {@code listeners}, in order; {@link #NONE} for none. */
    public static Listeners of(List<InferenceListener> listeners) {
        return listeners.isEmpty() ? NONE : new Listeners(List.copyOf(listeners));
    }

    /** Whether there are none. */
    public boolean isEmpty() {
        return listeners.isEmpty();
    }

    /** The listeners, in order. */
    public List<InferenceListener> all() {
        return listeners;
    }

    public void callStarted(InferenceListener.Call call) {
        each("onCallStarted", l -> l.onCallStarted(call));
    }

    public void attemptStarted(InferenceListener.Call call, InferenceListener.AttemptStart a) {
        each("onAttemptStarted", l -> l.onAttemptStarted(call, a));
    }

    public void attemptEnded(InferenceListener.Call call, InferenceListener.AttemptEnd a) {
        each("onAttemptEnded", l -> l.onAttemptEnded(call, a));
    }

    public void firstToken(InferenceListener.Call call, Duration ttft) {
        each("onFirstToken", l -> l.onFirstToken(call, ttft));
    }

    public void completed(InferenceListener.Call call, Receipt receipt) {
        each("onCompleted", l -> l.onCompleted(call, receipt));
    }

    public void failed(InferenceListener.Call call, InferenceException error) {
        each("onFailed", l -> l.onFailed(call, error));
    }

    public void spillover(InferenceListener.Call call, String primary, String reason) {
        each("onSpillover", l -> l.onSpillover(call, primary, reason));
    }

    public void budgetRefused(InferenceListener.Call call, BudgetExceededException refusal) {
        each("onBudgetRefused", l -> l.onBudgetRefused(call, refusal));
    }

    public void circuitChanged(InferenceListener.CircuitChange change) {
        each("onCircuitChanged", l -> l.onCircuitChanged(change));
    }

    private void each(String event, Consumer<InferenceListener> call) {
        for (InferenceListener l : listeners) {
            try {
                call.accept(l);
            } catch (VirtualMachineError e) {
                throw e;
            } catch (Throwable t) {
                String key = System.identityHashCode(l) + "/" + event;
                if (warned.add(key)) {
                    LOG.warn(
                            "listener {} threw from {}; the call goes on (further failures of it are logged at debug)",
                            l.getClass().getName(),
                            event,
                            t);
                } else {
                    LOG.debug("listener {} threw from {}", l.getClass().getName(), event, t);
                }
            }
        }
    }
}
