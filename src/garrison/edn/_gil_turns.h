/*
 * Other threads' turns during a long C call of the EDN accelerators.
 *
 * A large loads or dumps in a worker thread (the EDN file store reads and
 * writes memory.edn in one) must not stall the event loop's thread for its
 * whole duration: every GIL_TURN_CHECK units of work (characters read, bytes
 * written) the call looks at the clock, and once per two switch intervals
 * (sys.getswitchinterval()) it releases and retakes the GIL. Not more often:
 * each release wakes a waiting thread, which then waits a whole switch
 * interval again before it asks for the GIL, so frequent releases would keep
 * it waiting for ever. Call gil_turns_maybe only where the caller's state is
 * its own: every object it is inside holds a strong reference.
 */
#ifndef GARRISON_GIL_TURNS_H
#define GARRISON_GIL_TURNS_H

#include <Python.h>
#include <time.h>

#define GIL_TURN_CHECK (64 * 1024)

typedef struct {
    Py_ssize_t next_check; /* position of the next look at the clock */
    double period;         /* seconds between GIL releases; 0 until first needed */
    double last;           /* when the GIL was last released (or the period set) */
} GilTurns;

#define GIL_TURNS_INIT {GIL_TURN_CHECK, 0.0, 0.0}

static double
gil_turns_now(void)
{
    struct timespec ts;
    if (timespec_get(&ts, TIME_UTC) != TIME_UTC)
        return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
gil_turns_give(GilTurns *t)
{
    double now = gil_turns_now();
    if (t->period == 0.0) {
        /* Only large calls get here: ask for the interval once per call. */
        double interval = 0.005;
        PyObject *getter = PySys_GetObject("getswitchinterval"); /* borrowed */
        PyObject *result = getter ? PyObject_CallNoArgs(getter) : NULL;
        if (result != NULL && PyFloat_Check(result))
            interval = PyFloat_AS_DOUBLE(result);
        Py_XDECREF(result);
        PyErr_Clear(); /* no exception is pending here (callers check first) */
        t->period = 2.0 * interval + 0.001;
        t->last = now;
        return;
    }
    if (now - t->last < t->period && now >= t->last)
        return;
    Py_BEGIN_ALLOW_THREADS
    Py_END_ALLOW_THREADS
    t->last = gil_turns_now();
}

/* At `position` (characters read, bytes written): give other threads their
 * turn if it is time. */
static inline void
gil_turns_maybe(GilTurns *t, Py_ssize_t position)
{
    if (position >= t->next_check) {
        t->next_check = position + GIL_TURN_CHECK;
        gil_turns_give(t);
    }
}

#endif /* GARRISON_GIL_TURNS_H */
