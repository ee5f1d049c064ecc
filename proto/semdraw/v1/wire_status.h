/*
 * semdraw/v1/wire_status.h - the status codes the daemon puts in Error.code.
 *
 * Wire ABI like the .proto beside it: values never change meaning. -1..-8 are
 * the engine's own codes (semd/status.h) passed through; the others are the
 * service's. libsemdraw's SEMDRAW_E_* use the same numbers.
 */
#ifndef SEMDRAW_V1_WIRE_STATUS_H
#define SEMDRAW_V1_WIRE_STATUS_H

enum semdraw_wire_status {
    SEMDRAW_WIRE_EINVAL = -1,
    SEMDRAW_WIRE_ENOMEM = -2,
    SEMDRAW_WIRE_EIO = -3,
    SEMDRAW_WIRE_EFORMAT = -4,
    SEMDRAW_WIRE_ENOTFOUND = -5,
    SEMDRAW_WIRE_EUNSUPPORTED = -6,
    SEMDRAW_WIRE_ESHAPE = -7,
    SEMDRAW_WIRE_EBACKEND = -8,
    SEMDRAW_WIRE_ENOMODEL = -9, /* the model is still loading or failed to load */
    SEMDRAW_WIRE_EPERM = -10,   /* the session may not do this to that canvas */
    SEMDRAW_WIRE_EBUSY = -11    /* too much waiting already (commits for a frame, edits for a commit): retry later */
};

#endif
