package dev.hybridinference.core.spi;

import dev.hybridinference.core.cost.CostLedger;
import java.time.Clock;
import java.time.Duration;
import java.util.Objects;

/**
 * What every provider's builder sets: the id shown in receipts, the ledger receipts go to, and the
 * clock that dates them. Provider builders extend it. Not thread-safe.
 *
 * @param <B> the concrete builder, returned by each setter
 */
public abstract class ProviderBuilder<B extends ProviderBuilder<B>> {
    private String id;
    private CostLedger ledger;
    private Clock clock = Clock.systemUTC();

    /** A builder whose id defaults to {@code defaultId}. */
    protected ProviderBuilder(String defaultId) {
        this.id = Objects.requireNonNull(defaultId, "defaultId");
    }

    @SuppressWarnings("unchecked")
    private B self() {
        return (B) this;
    }

    /** The provider id shown in receipts, logs and metrics tags; not blank, no control characters. */
    public B id(String id) {
        Objects.requireNonNull(id, "id");
        if (id.isBlank() || id.chars().anyMatch(Character::isISOControl)) {
            throw new IllegalArgumentException("a provider id must not be blank or hold control characters");
        }
        this.id = id;
        return self();
    }

    /** Where receipts are recorded; none unless set. */
    public B ledger(CostLedger ledger) {
        this.ledger = ledger;
        return self();
    }

    /** The wall clock of receipts. */
    public B clock(Clock clock) {
        this.clock = Objects.requireNonNull(clock, "clock");
        return self();
    }

    /**
     * Checks a builder argument that names something (an endpoint, a region, a model).
     *
     * @return {@code value}
     * @throws IllegalArgumentException when it is blank or holds control characters
     */
    protected static String requireText(String value, String what) {
        Objects.requireNonNull(value, what);
        if (value.isBlank() || value.chars().anyMatch(Character::isISOControl)) {
            throw new IllegalArgumentException(what + " must not be blank or hold control characters");
        }
        return value;
    }

    /**
     * Checks a builder argument that is a positive duration (a timeout, an interval).
     *
     * @return {@code d}
     * @throws IllegalArgumentException when it is zero or negative
     */
    protected static Duration positive(Duration d, String what) {
        Objects.requireNonNull(d, what);
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException(what + " must be positive, got " + d);
        }
        return d;
    }

    /** Takes the id, ledger and clock a provider factory was given. */
    public B context(ProviderContext context) {
        return id(context.id()).ledger(context.ledger()).clock(context.clock());
    }

    /** The id set. */
    public final String id() {
        return id;
    }

    /** The ledger set, or null. */
    public final CostLedger ledger() {
        return ledger;
    }

    /** The clock set. */
    public final Clock clock() {
        return clock;
    }
}
