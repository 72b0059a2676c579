package dev.hybridinference.faults;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/** Names the hardening item a test class covers; its row in the fault report. */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.TYPE)
@interface FaultItem {
    /** The item's number in the hardening issue. */
    int value();

    /** A few words on what the item is about. */
    String title();
}
