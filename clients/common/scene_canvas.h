/*
 * scene_canvas.h - a scene file (docs/scene-format.md) as a live canvas of
 * the daemon, through libsemdraw: create the canvas with the scene's size,
 * seed, profile and timesteps; send its background and layers; apply the
 * edits of its timeline. Used by `semdraw run` and by semdraw-paint's scene
 * loading.
 */
#ifndef SEMDRAW_CLIENTS_SCENE_CANVAS_H
#define SEMDRAW_CLIENTS_SCENE_CANVAS_H

#include "semd/scene.h"
#include "semdraw/semdraw.h"

/* The canvas description of a scene (flags: extra SEMDRAW_CANVAS_* bits). */
void scene_canvas_desc(const semd_scene *s, uint32_t flags, semdraw_canvas_desc *d);

/*
 * Background, layers and the scene's guidance/bootstrap parameters sent to a
 * fresh canvas (not committed). Layer i of the scene gets the i-th id from
 * semdraw_layer_add, which on a fresh canvas is i. Returns a SEMDRAW status.
 */
int scene_canvas_fill(semdraw_canvas *cv, const semd_scene *s);

/* One timeline edit (not committed). */
int scene_canvas_edit(semdraw_canvas *cv, const semd_scene *s, const semd_scene_edit *e);

#endif
