package app

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/openapi/apiclient"
	"github.com/deepimageshub/imagehub/openapi/openapitest"
)

// TestGeneratedClient drives a hub with the Go client that oapi-codegen
// generates from the description (openapi/apiclient): the description
// generates a client, its operations reach the right routes with the right
// parameters, and its types decode what the hub answers, errors included.
// Each call is also validated against the description by the transport.
func TestGeneratedClient(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "ada@example.com", auth.RoleAdmin)
	token := admin.newToken(map[string]string{"name": "generated client"})
	api, err := apiclient.NewClientWithResponses(tb.base,
		apiclient.WithHTTPClient(&http.Client{Transport: openapitest.Transport(t, nil), Timeout: 30 * time.Second}),
		apiclient.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+token)
			return nil
		}))
	require.NoError(t, err)
	ctx := context.Background()

	me, err := api.GetMeWithResponse(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, me.StatusCode(), "%s", me.Body)
	require.Equal(t, "ada@example.com", me.JSON200.User.Email)

	for _, name := range []string{"okapi", "quokka"} {
		res, err := api.CreateLabelWithResponse(ctx, apiclient.CreateLabelJSONRequestBody{Name: name})
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, res.StatusCode(), "%s", res.Body)
		require.Equal(t, name, res.JSON201.Label.Name)
	}
	again, err := api.CreateLabelWithResponse(ctx, apiclient.CreateLabelJSONRequestBody{Name: "okapi"})
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, again.StatusCode())
	require.Equal(t, "label_exists", again.JSONDefault.Error.Code, "errors decode as the description's Problem")
	require.Equal(t, "name", *again.JSONDefault.Error.Field)

	limit := 1
	labels, err := api.ListLabelsWithResponse(ctx, &apiclient.ListLabelsParams{Limit: &limit})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, labels.StatusCode(), "%s", labels.Body)
	require.Len(t, labels.JSON200.Items, 1)
	require.NotNil(t, labels.JSON200.NextCursor)

	body, contentType := multipartBody(t, photos(3, 41), map[string][]string{"labels": {"okapi"}})
	up, err := api.UploadImagesWithBodyWithResponse(ctx, contentType, body)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, up.StatusCode(), "%s", up.Body)
	require.Len(t, up.JSON201.Results, 3)
	uploaded := map[string]bool{}
	for _, r := range up.JSON201.Results {
		require.Equal(t, apiclient.UploadResultStatus("created"), r.Status)
		uploaded[r.Image.Id] = true
	}

	// Every upload, one page at a time, through the cursor the client
	// hands back as it was given.
	seen := map[string]bool{}
	params := &apiclient.ListImagesParams{Limit: &limit}
	for page := 0; ; page++ {
		require.Less(t, page, 5, "the cursor does not end")
		list, err := api.ListImagesWithResponse(ctx, params)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, list.StatusCode(), "%s", list.Body)
		for _, im := range list.JSON200.Items {
			seen[im.Id] = true
		}
		if list.JSON200.NextCursor == nil {
			break
		}
		params.Cursor = list.JSON200.NextCursor
	}
	require.Equal(t, uploaded, seen)

	for id := range uploaded {
		im, err := api.GetImageWithResponse(ctx, id)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, im.StatusCode(), "%s", im.Body)
		require.Equal(t, id, im.JSON200.Id)
		require.Equal(t, 1024, im.JSON200.Width)
	}
	missing, err := api.GetImageWithResponse(ctx, "00000000-0000-0000-0000-000000000000")
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, missing.StatusCode())
	require.Equal(t, "not_found", missing.JSONDefault.Error.Code)

	tokens, err := api.ListTokensWithResponse(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, tokens.StatusCode(), "%s", tokens.Body)
	require.Len(t, tokens.JSON200.Items, 1)
	require.Equal(t, "generated client", tokens.JSON200.Items[0].Name)
}
